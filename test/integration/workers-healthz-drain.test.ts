// Found by an operations probe: with server.workers: 2, /healthz answered 500 internal_error ("No
// worker is running now: a replacement is starting") as soon as SIGTERM began the drain, and logged
// an error for every probe, while one process answers 200 until it exits (README: "200 while the
// process runs"). The kubelet's liveness probe then counts a draining pod as dead.
import { join } from 'node:path'
import { request } from 'undici'
import { afterEach, expect, it } from 'vitest'
import { serveConfig, type ServeProcess } from '../helpers/cli.ts'
import { startUpstream, type TestUpstream } from '../helpers/upstream.ts'
import { deferred, waitFor } from '../helpers/wait.ts'

const ADMIN = 'workers-healthz-drain-admin-token-0123'
let gateway: ServeProcess | undefined
let upstream: TestUpstream | undefined

afterEach(async () => {
  await gateway?.stop('SIGKILL')
  await upstream?.close()
})

it('answers /healthz 200, and the admin API, while the workers drain a request in flight, then exits 0', async () => {
  const arrived = deferred()
  const release = deferred()
  const api = await startUpstream(async (_req, res) => {
    arrived.resolve()
    await release.promise
    res.writeHead(200, { 'content-type': 'text/plain' }).end('finished')
  })
  upstream = api
  gateway = await serveConfig((dir) => ({
    server: { listen: '127.0.0.1:0', workers: 2, shutdown_timeout: '60s' },
    admin: { listen: '127.0.0.1:0', token: ADMIN },
    audit: { sinks: [{ type: 'sqlite', path: join(dir, 'audit.db') }], spill_dir: join(dir, 'spill') },
    upstreams: [{ name: 'api', url: api.url }],
    routes: [{ id: 'slow', path: '/slow', upstream: 'api', public: true }],
  }), { startTimeout: 60_000 })
  const auditHead = () => request(`${gateway!.adminUrl}/api/audit/head`, { headers: { authorization: `Bearer ${ADMIN}` } })
  // Each worker's audit thread has said where its chain stands.
  await waitFor(async () => {
    const res = await auditHead()
    return res.statusCode === 200 && ((await res.body.json()) as { workers: unknown[] }).workers.length === 2
  }, 'both workers\' audit heads')
  const inFlight = request(`${gateway.url}/slow`)
  await arrived.promise

  gateway.child.kill('SIGTERM')
  const admin = gateway.adminUrl
  await waitFor(async () => (await request(`${admin}/readyz`)).statusCode === 503, '/readyz to say not ready')

  const health = await request(`${admin}/healthz`)
  expect(health.statusCode).toBe(200)
  expect(await health.body.json()).toEqual({ status: 'ok' })
  expect((await request(`${admin}/healthz`, { method: 'HEAD' })).statusCode).toBe(200)
  expect((await request(`${admin}/healthz`, { method: 'POST' })).statusCode).toBe(405)
  // The admin API too, as one gateway's answers until its drain ends (it was 500 "a replacement is starting").
  const routes = await request(`${admin}/api/routes`, { headers: { authorization: `Bearer ${ADMIN}` } })
  expect(routes.statusCode).toBe(200)
  expect(((await routes.body.json()) as Array<{ id: string }>).map((route) => route.id)).toEqual(['slow'])
  // And the audit log's head, which the log still moves while the drain goes on (it was 500).
  const head = await auditHead()
  const headBody = await head.body.text()
  expect(head.statusCode, headBody).toBe(200)
  // The worker holding the request answers; the other may have ended its drain already.
  const heads = (JSON.parse(headBody) as { workers: Array<{ worker: string }> }).workers
  expect(heads.length).toBeGreaterThanOrEqual(1)

  release.resolve()
  const res = await inFlight
  expect(await res.body.text()).toBe('finished')
  expect(await gateway.exited).toBe(0)
  expect(gateway.stderr()).not.toMatch(/admin request failed/)
}, 90_000)
