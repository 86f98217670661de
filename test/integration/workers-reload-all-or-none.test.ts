// Found by an adversarial probe (helper). server.workers: 2 and a reload that one worker accepts and
// the other refuses: before, it stayed in force on the first while the answer said refused. Every worker loads the config file and its secrets store's master key on its own; here
// the master key file is rewritten between the two workers' reads (named pipes give each reader
// its own content, so the timing is the test's: the first reader gets the valid key, the second a
// half-written one). Also: a worker whose event loop is held (its reload blocked reading that file)
// while /metrics is scraped.
import { mkdtemp, writeFile } from 'node:fs/promises'
import { randomBytes } from 'node:crypto'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { request, type Dispatcher } from 'undici'
import { stringify } from 'yaml'
import { afterAll, beforeAll, expect, it } from 'vitest'
import { startServe, type ServeProcess } from '../helpers/cli.ts'
import { freshRequest } from '../helpers/fresh.ts'
import { endPipeFedTest, startPipeFeeder, type PipeFeeder } from '../helpers/pipe-feeder.ts'
import { startUpstream, type TestUpstream } from '../helpers/upstream.ts'
import { deferred, metricValue, waitFor } from '../helpers/wait.ts'

const ADMIN_TOKEN = 'workers-reload-split-admin-token-0123'
const AUTH = { authorization: `Bearer ${ADMIN_TOKEN}` }
const MASTER_KEY = randomBytes(32).toString('base64')

let dir: string
let file: string
let feeder: PipeFeeder
let upstream: TestUpstream
let gateway: ServeProcess

function config(extraRoutes: object[] = []) {
  return {
    server: { listen: '127.0.0.1:0', workers: 2, shutdown_timeout: '5s' },
    admin: { listen: '127.0.0.1:0', token: ADMIN_TOKEN },
    secrets: { store: { type: 'embedded', path: join(dir, 'secrets.db'), master_key: `file:${feeder.path}` } },
    audit: { sinks: [{ type: 'sqlite', path: join(dir, 'audit.db') }], flush_interval: '10ms', spill_dir: join(dir, 'spill') },
    upstreams: [{ name: 'api', url: upstream.url }],
    routes: [{ id: 'open', path: '/open', upstream: 'api', public: true }, ...extraRoutes],
  }
}

const fresh = (path: string) => freshRequest(`${gateway.url}${path}`)

async function auditInstances(route: string, count: number): Promise<Set<string>> {
  let instances = new Set<string>()
  await waitFor(async () => {
    const res = await request(`${gateway.adminUrl}/api/audit?route=${route}&limit=1000`, { headers: AUTH })
    const records = (await res.body.json()) as Array<{ instance: string }>
    instances = new Set(records.map((r) => r.instance.replace(/^.*\//, '')))
    return records.length >= count
  }, `${count} audit records of ${route}`, 30_000)
  return instances
}

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'bouncer-workers-split-'))
  file = join(dir, 'bouncer.yaml')
  feeder = startPipeFeeder(dir, 'master-key', MASTER_KEY)
  upstream = await startUpstream((_req, res) => {
    res.writeHead(200, { 'content-type': 'text/plain' }).end('ok')
  })
  await writeFile(file, stringify(config()))
  gateway = await startServe(['--config', file], { startTimeout: 90_000 })
}, 120_000)

afterAll(() => endPipeFedTest({ gateway, feeder, upstream, dir }))

it('a reload one worker refuses is not in force on the other (all workers, or none, and the answer says which)', async () => {
  // Both workers serve (24 connections: the kernel hashes each to either worker).
  const warm = await Promise.all(Array.from({ length: 24 }, () => fresh('/open')))
  expect(warm.every((a) => a.status === 200)).toBe(true)
  expect(await auditInstances('open', 24)).toEqual(new Set(['w1', 'w2']))

  // A route is added; while the gateway reloads, the master key file is being rewritten: the first
  // worker to read it gets the valid key, the second a truncated one.
  feeder.plan = [{ content: MASTER_KEY }, { content: MASTER_KEY.slice(0, 20) }]
  await writeFile(file, stringify(config([{ id: 'added', path: '/added', upstream: 'api', public: true }])))
  const reloaded = await request(`${gateway.adminUrl}/api/reload`, { method: 'POST', headers: AUTH })
  const body = (await reloaded.body.json()) as { ok: boolean; errors?: string[] }

  const answers = await Promise.all(Array.from({ length: 24 }, () => fresh('/added')))
  const statuses = [...new Set(answers.map((a) => a.status))].sort()
  // What a user is told and what the gateway does must agree: refused (422) → no worker serves the
  // new route; reloaded (200) → every worker does.
  expect({ reload: reloaded.statusCode, ok: body.ok, added: statuses }).toSatisfy(
    (seen: { reload: number; added: number[] }) =>
      (seen.reload === 422 && seen.added.length === 1 && seen.added[0] === 404) ||
      (seen.reload === 200 && seen.added.length === 1 && seen.added[0] === 200),
  )
}, 120_000)

it('/metrics counters do not go back, and /metrics answers promptly, while one worker is busy', async () => {
  // Settle: the gateway on one config (the valid key for both; what the last test's plan left, when
  // its workers shared a pipe, is dropped).
  feeder.plan = []
  const settled = await request(`${gateway.adminUrl}/api/reload`, { method: 'POST', headers: AUTH })
  await settled.body.dump()
  const warm = await Promise.all(Array.from({ length: 24 }, () => fresh('/open')))
  expect(warm.every((a) => a.status === 200)).toBe(true)
  const series = 'bouncer_requests_total{route="open",status="200",decision="allow"}'
  const before = (await metricValue(gateway.adminUrl, series)) as number
  expect(before).toBeGreaterThanOrEqual(48)

  // A reload in which the second worker's read of its master key takes 12 s (a slow disk, NFS): its
  // thread is busy that long. Both workers read the key at once; when they share one pipe
  // (pipe-feeder.ts), neither is held and the reload answers at once (refused): then it is tried again.
  const slow = deferred()
  let reloading: Promise<Dispatcher.ResponseData> | undefined
  for (let attempt = 1; reloading === undefined; attempt++) {
    expect(attempt, 'reloads tried until each worker read a pipe of its own').toBeLessThanOrEqual(20)
    feeder.plan = [{ content: MASTER_KEY }, { content: MASTER_KEY, gate: slow.promise }]
    const readers = feeder.readers
    let answered = false
    const tried = request(`${gateway.adminUrl}/api/reload`, { method: 'POST', headers: AUTH })
    void tried.then(() => (answered = true), () => (answered = true))
    // The second reader's thread now waits in its synchronous read of the key.
    await waitFor(() => feeder.readers === readers + 2 || answered, 'both workers reading the master key, or the answer', 30_000)
    if (feeder.readers === readers + 2) reloading = tried
    else await (await tried).body.dump()
  }
  const release = setTimeout(() => slow.resolve(), 12_000)
  try {
    const started = Date.now()
    const during = await metricValue(gateway.adminUrl, series)
    const took = Date.now() - started
    // A Prometheus counter that drops is read as a reset: rate() and increase() then count the
    // worker's whole total again when it comes back.
    expect(during, 'the counter while one worker is busy').toBeGreaterThanOrEqual(before)
    // Prometheus' default scrape_timeout is 10 s: a scrape that takes that long fails as a whole.
    expect(took, 'ms /metrics took').toBeLessThan(5_000)
  } finally {
    clearTimeout(release)
    slow.resolve()
  }
  const done = await reloading
  await done.body.dump()
}, 120_000)
