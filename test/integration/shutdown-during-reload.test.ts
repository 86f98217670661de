// A SIGTERM while a reload is still reading and preparing its config (the file on a slow disk, a
// secrets store that takes its time): the drain goes on as on any SIGTERM, the prepared config is
// never swapped in, the reload is answered as refused, and the process exits 0 with every served
// request's audit record written; when the read never ends, the process still ends (SIGKILL, once
// the drain is done and a grace has passed) rather than never. The config file is a named pipe
// (pipe-feeder.ts): the test says when each read gets its content.
import { DatabaseSync } from 'node:sqlite'
import { mkdtemp } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { request, type Dispatcher } from 'undici'
import { stringify } from 'yaml'
import { afterEach, beforeEach, expect, it } from 'vitest'
import { startServe, type ServeProcess } from '../helpers/cli.ts'
import { endPipeFedTest, startPipeFeeder, type PipeFeeder } from '../helpers/pipe-feeder.ts'
import { startUpstream, type TestUpstream } from '../helpers/upstream.ts'
import { deferred, waitFor, waitForText } from '../helpers/wait.ts'

const ADMIN_TOKEN = 'shutdown-during-reload-admin-token'
const AUTH = { authorization: `Bearer ${ADMIN_TOKEN}` }

let dir: string
let feeder: PipeFeeder
let upstream: TestUpstream
let gateway: ServeProcess
/** Requests to /slow wait here until the test lets them go. */
let slowRelease = deferred()

function configText(routes: object[]): string {
  return stringify({
    server: { listen: '127.0.0.1:0', shutdown_timeout: '10s' },
    admin: { listen: '127.0.0.1:0', token: ADMIN_TOKEN },
    audit: { sinks: [{ type: 'sqlite', path: join(dir, 'audit.db') }], flush_interval: '10ms', spill_dir: join(dir, 'spill') },
    upstreams: [{ name: 'api', url: upstream.url }],
    routes: [{ id: 'open', path: '/open', upstream: 'api', public: true }, { id: 'slow', path: '/slow', upstream: 'api', public: true }, ...routes],
  })
}

beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'bouncer-shutdown-reload-'))
  slowRelease = deferred()
  upstream = await startUpstream(async (req, res) => {
    if (req.url === '/slow') await slowRelease.promise
    res.writeHead(200, { 'content-type': 'text/plain' }).end('ok')
  })
  feeder = startPipeFeeder(dir, 'bouncer.yaml', configText([]))
  gateway = await startServe(['--config', feeder.path], { startTimeout: 60_000 })
}, 90_000)

afterEach(async () => {
  slowRelease.resolve()
  await endPipeFedTest({ gateway, feeder, upstream, dir })
})

/** A reload whose config read is held until `gate` settles; resolves once the gateway is reading. */
async function reloadHeldAt(gate: Promise<void>, routes: object[]): Promise<{ answer: Promise<Dispatcher.ResponseData> }> {
  feeder.plan = [{ content: configText(routes), gate }]
  const readers = feeder.readers
  const answer = request(`${gateway.adminUrl}/api/reload`, { method: 'POST', headers: AUTH })
  answer.catch(() => {}) // the first test's is cut off by the exit
  await waitFor(() => feeder.readers === readers + 1, 'the reload reading the config file')
  return { answer }
}

const draining = () => waitForText(gateway.stderr, '"msg":"draining"')

function auditedRoutes(): string[] {
  const db = new DatabaseSync(join(dir, 'audit.db'), { readOnly: true })
  try {
    return (db.prepare('SELECT route FROM audit_records ORDER BY time_ms, seq').all() as Array<{ route: string }>).map((r) => r.route)
  } finally {
    db.close()
  }
}

it('a reload whose read never ends does not hold the process: it ends after the drain, every served request audited', async () => {
  for (let i = 0; i < 5; i++) expect((await request(`${gateway.url}/open`)).statusCode).toBe(200)
  await reloadHeldAt(new Promise<void>(() => {}), [{ id: 'added', path: '/added', upstream: 'api', public: true }])
  gateway.child.kill('SIGTERM')
  await draining()
  // Before, it never exited: process.exit waits for the read (libuv joins its thread pool at exit).
  // The drain is done (the audit log closed) when it ends without it, by SIGKILL, and says why.
  expect(await gateway.exited).toBeNull()
  expect(gateway.child.signalCode).toBe('SIGKILL')
  expect(gateway.stderr()).toContain('a file operation has not returned since the drain ended')
  expect(auditedRoutes()).toEqual(['open', 'open', 'open', 'open', 'open'])
}, 60_000)

it('a reload prepared while the gateway drains is refused, not swapped in; the request in flight is answered', async () => {
  const inFlight = request(`${gateway.url}/slow`)
  await waitFor(() => upstream.started.includes('/slow'), 'the slow request at the upstream')
  const held = deferred()
  const { answer } = await reloadHeldAt(held.promise, [{ id: 'added', path: '/added', upstream: 'api', public: true }])
  gateway.child.kill('SIGTERM')
  await draining()
  held.resolve() // the read ends during the drain: the config is prepared, then refused
  const reloaded = await answer
  const body = (await reloaded.body.json()) as { ok: boolean; errors: string[] }
  expect(body).toEqual({ ok: false, errors: ['the gateway is shutting down: the config is not reloaded'] })
  slowRelease.resolve()
  const slow = await inFlight
  expect(slow.statusCode).toBe(200)
  expect(await slow.body.text()).toBe('ok')
  expect(gateway.stderr()).not.toContain('"msg":"config reloaded"')
  expect(await gateway.exited).toBe(0)
  expect(auditedRoutes()).toEqual(['slow'])
}, 60_000)
