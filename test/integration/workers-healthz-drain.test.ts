// Found by an operations probe: with server.workers: 2, /healthz answered 500 internal_error ("No
// worker is running now: a replacement is starting") as soon as SIGTERM began the drain, and logged
// an error for every probe, while one process answers 200 until it exits (README: "200 while the
// process runs"). The kubelet's liveness probe then counts a draining pod as dead.
import { join } from 'node:path'
import { Client, request } from 'undici'
import { afterEach, expect, it } from 'vitest'
import { serveConfig, type ServeProcess } from '../helpers/cli.ts'
import { rawRequest } from '../helpers/raw.ts'
import { startUpstream, type TestUpstream } from '../helpers/upstream.ts'
import { deferred, waitFor } from '../helpers/wait.ts'

const ADMIN = 'workers-healthz-drain-admin-token-0123'
let gateway: ServeProcess | undefined
let upstream: TestUpstream | undefined
const clients: Client[] = []

afterEach(async () => {
  for (const client of clients.splice(0)) client.destroy()
  await gateway?.stop('SIGKILL')
  await upstream?.close()
})

const auditHead = () => request(`${gateway!.adminUrl}/api/audit/head`, { headers: { authorization: `Bearer ${ADMIN}` } })

type Heads = { workers: Array<{ worker: string; head: { count: number } }> }
const counts = async () => Object.fromEntries(((await (await auditHead()).body.json()) as Heads).workers.map((each) => [each.worker, each.head.count]))

/**
 * Two workers, both audit heads known, one request held at the upstream until `release`; with
 * `holder`, on that worker (a connection the kernel gave it, found by whose audit chain a first
 * request on it moved).
 */
async function twoWorkersHoldingARequest(holder?: string) {
  const arrived = deferred()
  const release = deferred()
  const api = await startUpstream(async (req, res) => {
    if (req.url === '/fast') return void res.writeHead(200).end('fast')
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
    routes: [{ id: 'slow', path: '/slow', upstream: 'api', public: true }, { id: 'fast', path: '/fast', upstream: 'api', public: true }],
  }), { startTimeout: 60_000 })
  // Each worker's audit thread has said where its chain stands.
  await waitFor(async () => {
    const res = await auditHead()
    return res.statusCode === 200 && ((await res.body.json()) as { workers: unknown[] }).workers.length === 2
  }, 'both workers\' audit heads')
  let client = new Client(gateway.url)
  for (let attempt = 1; holder !== undefined; attempt++) {
    const before = await counts()
    await (await client.request({ path: '/fast', method: 'GET' })).body.text()
    let moved: string | undefined
    await waitFor(async () => (moved = Object.entries(await counts()).find(([worker, count]) => count !== before[worker])?.[0]) !== undefined, 'the fast request\'s record')
    if (moved === holder) break
    if (attempt === 20) throw new Error(`no connection went to ${holder}`)
    await client.close()
    client = new Client(gateway.url)
  }
  clients.push(client)
  const inFlight = client.request({ path: '/slow', method: 'GET' })
  await arrived.promise
  return { gateway, release, inFlight }
}

it('answers /healthz 200, and the admin API, while the workers drain a request in flight, then exits 0', async () => {
  const { gateway, release, inFlight } = await twoWorkersHoldingARequest()
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
  expect(((await routes.body.json()) as Array<{ id: string }>).map((route) => route.id)).toEqual(['slow', 'fast'])
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

// Found in a loaded CI run: GET /api/audit/head answered 500 "Worker w1 did not answer." during the
// drain. The idle worker's drain ends at once; when its thread ended while the primary was asking
// both workers, the primary read w1's state after the asks ('stopped', no longer 'draining') and
// took w1's missing answer for a running first worker's failure, though w2, holding the request,
// had answered (only when w2 held the request: the kernel's choice). Reads are kept in flight from the SIGTERM until /metrics counts w1's thread gone,
// so some are asked of both workers as it ends.
it('answers /api/audit/head 200 as the idle worker\'s drain ends while it is asked', async () => {
  const { gateway, release, inFlight } = await twoWorkersHoldingARequest('w2') // w1, idle, ends its drain at once
  const stopped = async () => {
    const res = await request(`${gateway.adminUrl}/metrics`)
    return /bouncer_workers\{state="stopped"\} 1/.test(await res.body.text())
  }
  const failures: string[] = []
  let ended = false
  const reader = async () => {
    while (!ended) {
      const res = await auditHead()
      const body = await res.body.text()
      if (res.statusCode !== 200) failures.push(body)
    }
  }
  gateway.child.kill('SIGTERM')
  const readers = Array.from({ length: 8 }, reader)
  await waitFor(stopped, 'the idle worker to end its drain')
  ended = true
  await Promise.all(readers)
  expect(failures).toEqual([])

  release.resolve()
  expect(await (await inFlight).body.text()).toBe('finished')
  expect(await gateway.exited).toBe(0)
  expect(gateway.stderr()).not.toMatch(/admin request failed/)
}, 90_000)

// Found by an adversarial probe: with workers the primary's admin listener answered what Node's
// parser refuses with its bare 431 or 400, no problem body (SPEC "Errors").
it('the primary\'s admin listener answers a request its parser refuses as a problem', async () => {
  gateway = await serveConfig((dir) => ({
    server: { listen: '127.0.0.1:0', workers: 2 },
    admin: { listen: '127.0.0.1:0', token: ADMIN },
    audit: { sinks: [{ type: 'sqlite', path: join(dir, 'audit.db') }], spill_dir: join(dir, 'spill') },
    upstreams: [{ name: 'api', url: 'http://127.0.0.1:9' }],
    routes: [{ id: 'fast', path: '/fast', upstream: 'api', public: true }],
  }), { startTimeout: 60_000 })
  const port = Number(new URL(gateway.adminUrl).port)
  for (const [data, status, code] of [
    [`GET /healthz HTTP/1.1\r\nHost: a\r\nX-Big: ${'a'.repeat(20_000)}\r\n\r\n`, 431, 'headers_too_large'],
    ['GET /he alth HTTP/1.1\r\nHost: a\r\n\r\n', 400, 'bad_request'],
  ] as const) {
    const res = await rawRequest(port, data)
    expect(res.status).toBe(status)
    expect(res.headers['content-type']).toBe('application/problem+json')
    expect(JSON.parse(res.body)).toMatchObject({ status, code })
  }
})
