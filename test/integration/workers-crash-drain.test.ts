// Found by an adversarial probe (helper): the gateway read not ready, and a reload answered "shutting
// down" while applied, during a crashed worker's drain. server.workers: 2, one worker crashes (an uncaught exception, thrown
// through the inspector as test/integration/workers.test.ts does) while it holds requests in
// flight, so it drains for a while before the primary replaces it. Meanwhile the other worker serves
// on. What the admin listener, which speaks for the whole gateway, says during that drain.
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { request } from 'undici'
import { stringify } from 'yaml'
import { afterAll, beforeAll, expect, it } from 'vitest'
import { startServe, type ServeProcess } from '../helpers/cli.ts'
import { freshRequest } from '../helpers/fresh.ts'
import { crashWorker } from '../helpers/inspector.ts'
import { startUpstream, type TestUpstream } from '../helpers/upstream.ts'
import { deferred, waitFor, waitForText } from '../helpers/wait.ts'

const ADMIN_TOKEN = 'workers-crash-drain-admin-token-0123'
const AUTH = { authorization: `Bearer ${ADMIN_TOKEN}` }

let dir: string
let file: string
let upstream: TestUpstream
let gateway: ServeProcess
const held = deferred()

function config(extraRoutes: object[] = []) {
  return {
    server: { listen: '127.0.0.1:0', workers: 2, shutdown_timeout: '60s' },
    admin: { listen: '127.0.0.1:0', token: ADMIN_TOKEN },
    audit: { sinks: [{ type: 'sqlite', path: join(dir, 'audit.db') }], flush_interval: '10ms', spill_dir: join(dir, 'spill') },
    upstreams: [{ name: 'api', url: upstream.url }],
    routes: [
      { id: 'open', path: '/open', upstream: 'api', public: true },
      { id: 'slow', path: '/slow', upstream: 'api', public: true },
      ...extraRoutes,
    ],
  }
}

const fresh = (path: string) => freshRequest(`${gateway.url}${path}`)

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'bouncer-workers-crash-'))
  file = join(dir, 'bouncer.yaml')
  upstream = await startUpstream(async (req, res) => {
    if (req.url === '/slow') await held.promise
    res.writeHead(200, { 'content-type': 'text/plain' }).end('ok')
  })
  await writeFile(file, stringify(config()))
  gateway = await startServe(['--config', file], { nodeArgs: ['--inspect=127.0.0.1:0'], startTimeout: 90_000 })
}, 120_000)

afterAll(async () => {
  held.resolve()
  await gateway?.stop('SIGKILL')
  await upstream?.close()
  await rm(dir, { recursive: true, force: true })
})

it('while a crashed worker drains, the gateway stays ready and a reload applies (to the worker that serves)', async () => {
  // Requests held on both workers (24 connections: the kernel hashes each to either worker).
  const HELD = 24
  const inFlight = Array.from({ length: HELD }, () => fresh('/slow'))
  await waitFor(() => upstream.received.filter((r) => r.url === '/slow').length === HELD, 'the held requests', 30_000)

  await crashWorker(gateway.stderr, 'w2')
  await waitForText(gateway.stderr, /"worker":"w2".*draining the worker/, 30_000)

  // w1 serves on: new connections are answered (w2 closed its listener).
  const served = await Promise.all(Array.from({ length: 10 }, () => fresh('/open')))
  expect(served.map((a) => a.status)).toEqual(Array(10).fill(200))

  // The gateway is ready: one worker serves ("Ready while at least one worker serves", supervisor.ts).
  const ready = await request(`${gateway.adminUrl}/readyz`)
  const readyBody = await ready.body.json()
  const workersLine = (await (await request(`${gateway.adminUrl}/metrics`)).body.text()).split('\n').filter((l) => l.startsWith('bouncer_workers{'))
  expect({ status: ready.statusCode, body: readyBody }).toMatchObject({ status: 200 })
  // And /metrics says which worker drains (the primary has a 'draining' state for it).
  expect(workersLine).toContain('bouncer_workers{state="draining"} 1')

  // A reload while the replacement is not yet there: w1 takes the new route; the answer must say so
  // (or, if it says refused, w1 must not have taken it).
  await writeFile(file, stringify(config([{ id: 'added', path: '/added', upstream: 'api', public: true }])))
  const reloaded = await request(`${gateway.adminUrl}/api/reload`, { method: 'POST', headers: AUTH })
  const body = (await reloaded.body.json()) as { ok: boolean; errors?: string[] }
  const added = await Promise.all(Array.from({ length: 10 }, () => fresh('/added')))
  const statuses = [...new Set(added.map((a) => a.status))]
  expect({ reload: reloaded.statusCode, body, added: statuses }).toSatisfy(
    (seen: { reload: number; added: number[] }) =>
      (seen.reload === 200 && seen.added.length === 1 && seen.added[0] === 200) ||
      (seen.reload === 422 && seen.added.length === 1 && seen.added[0] === 404),
  )

  held.resolve()
  const answers = await Promise.all(inFlight)
  expect(answers.map((a) => a.status)).toEqual(Array(HELD).fill(200))
}, 120_000)
