// server.workers: a reload that comes while a replacement worker is starting. The replacement read
// the config file before it changed; the primary reloaded only the workers already running, so it
// served the old config until the next reload. To hold a replacement between reading its config and
// listening, the config's secrets store takes its master key from a named pipe (pipe-feeder.ts):
// the worker's read waits until the test writes the key. The worker is crashed through the inspector.
import { mkdtemp, writeFile } from 'node:fs/promises'
import { randomBytes } from 'node:crypto'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { request } from 'undici'
import { stringify } from 'yaml'
import { afterAll, beforeAll, expect, it } from 'vitest'
import { startServe, type ServeProcess } from '../helpers/cli.ts'
import { freshRequest } from '../helpers/fresh.ts'
import { crashWorker } from '../helpers/inspector.ts'
import { endPipeFedTest, startPipeFeeder, type PipeFeeder } from '../helpers/pipe-feeder.ts'
import { startUpstream, type TestUpstream } from '../helpers/upstream.ts'
import { deferred, waitFor, waitForText } from '../helpers/wait.ts'

const ADMIN_TOKEN = 'workers-reload-start-admin-token-0123'
const MASTER_KEY = randomBytes(32).toString('base64')

let dir: string
let file: string
let feeder: PipeFeeder
let upstream: TestUpstream
let gateway: ServeProcess

function config(masterKey: string, extraRoutes: object[] = []) {
  return {
    server: { listen: '127.0.0.1:0', workers: 2, shutdown_timeout: '5s' },
    admin: { listen: '127.0.0.1:0', token: ADMIN_TOKEN },
    secrets: { store: { type: 'embedded', path: join(dir, 'secrets.db'), master_key: masterKey } },
    audit: { sinks: [{ type: 'sqlite', path: join(dir, 'audit.db') }], flush_interval: '10ms', spill_dir: join(dir, 'spill') },
    upstreams: [{ name: 'api', url: upstream.url }],
    routes: [{ id: 'open', path: '/open', upstream: 'api', public: true }, ...extraRoutes],
  }
}

const fresh = (path: string) => freshRequest(`${gateway.url}${path}`)

const reloadsOf = (worker: string) => gateway.stderr().split('\n').filter((l) => l.includes(`"worker":"${worker}"`) && l.includes('"msg":"config reloaded"')).length

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'bouncer-workers-start-'))
  file = join(dir, 'bouncer.yaml')
  feeder = startPipeFeeder(dir, 'master-key', MASTER_KEY)
  await writeFile(join(dir, 'master.key'), MASTER_KEY)
  upstream = await startUpstream((_req, res) => {
    res.writeHead(200, { 'content-type': 'text/plain' }).end('ok')
  })
  await writeFile(file, stringify(config(`file:${feeder.path}`)))
  gateway = await startServe(['--config', file], { nodeArgs: ['--inspect=127.0.0.1:0'], startTimeout: 90_000 })
}, 120_000)

afterAll(() => endPipeFedTest({ gateway, feeder, upstream, dir }))

it('a worker starting during a reload reloads once it listens', async () => {
  const held = deferred()
  feeder.plan = [{ content: MASTER_KEY, gate: held.promise }]
  const readersBefore = feeder.readers
  await crashWorker(gateway.stderr, 'w2')
  // The replacement has read the config file and waits on the pipe for its master key.
  await waitFor(() => feeder.readers === readersBefore + 1, 'the replacement reading its master key', 30_000)

  // The file changes (a route added; the key from a plain file, so w1's reload does not wait on the
  // pipe) and the gateway reloads while the replacement is still starting.
  await writeFile(file, stringify(config(`file:${join(dir, 'master.key')}`, [{ id: 'added', path: '/added', upstream: 'api', public: true }])))
  const reloaded = await request(`${gateway.adminUrl}/api/reload`, { method: 'POST', headers: { authorization: `Bearer ${ADMIN_TOKEN}` } })
  expect(reloaded.statusCode).toBe(200)
  expect(await reloaded.body.json()).toMatchObject({ ok: true })
  expect(reloadsOf('w1')).toBe(1)

  held.resolve()
  await waitForText(gateway.stderr, /"worker":"w2".*"msg":"config reloaded"/, 30_000)
  await waitFor(async () => (await (await request(`${gateway.adminUrl}/metrics`)).body.text()).includes('bouncer_workers{state="running"} 2'), 'both workers running', 30_000)

  // Both workers serve the new route (24 connections: the kernel hashes each to either worker).
  const answers = await Promise.all(Array.from({ length: 24 }, () => fresh('/added')))
  expect(answers.map((a) => a.status)).toEqual(Array(24).fill(200))
  await waitFor(async () => {
    const res = await request(`${gateway.adminUrl}/api/audit?route=added&limit=100`, { headers: { authorization: `Bearer ${ADMIN_TOKEN}` } })
    const records = (await res.body.json()) as Array<{ instance: string }>
    return records.length === 24 && new Set(records.map((r) => r.instance.replace(/^.*\//, ''))).size === 2
  }, 'both workers\' records of the new route', 30_000)
}, 120_000)
