// Found by a probe (server.workers x the admin API): the primary passes /api/* to the first running
// worker. While that worker's event loop was held (a long synchronous task, or a stall the watchdog
// had not yet called, server.worker_stall_timeout being 30 s), every admin call waited for it, the
// other worker idle: GET /api/routes took 9 s behind a 12 s task, and behind a stall it waited until
// the worker was replaced, then failed (its connection reset). The primary knows which workers
// answer its pings: one silent for seconds is asked last, not first.
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { request } from 'undici'
import { afterAll, beforeAll, expect, it } from 'vitest'
import type { ServeProcess } from '../helpers/cli.ts'
import { inspectWorker } from '../helpers/inspector.ts'
import { startUpstream, type TestUpstream } from '../helpers/upstream.ts'
import { waitFor } from '../helpers/wait.ts'
import { serveWithWorkers } from '../helpers/workers.ts'

const TOKEN = 'workers-probe-busy-admin-token-0123456789'
let dir: string
let upstream: TestUpstream
let gateway: ServeProcess

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'bouncer-workers-probe-busy-'))
  upstream = await startUpstream()
  ;({ gateway } = await serveWithWorkers(dir, () => ({
    admin: { listen: '127.0.0.1:0', token: TOKEN },
    audit: { sinks: [{ type: 'sqlite', path: join(dir, 'audit.db') }] },
    // Longer than the test: the held worker is not replaced meanwhile.
    server: { worker_stall_timeout: '60s' },
    upstreams: [{ name: 'api', url: upstream.url }],
    routes: [{ id: 'open', path: '/open', upstream: 'api', public: true }],
  }), { nodeArgs: ['--inspect=127.0.0.1:0'] }))
}, 120_000)

afterAll(async () => {
  await gateway?.stop('SIGKILL')
  await upstream?.close()
  await rm(dir, { recursive: true, force: true })
})

it('answers the admin API from a worker that answers while the first worker\'s event loop is held', async () => {
  const w1 = await inspectWorker(gateway.stderr, 'w1')
  try {
    w1.evaluate('for (;;) {}') // held until the thread is terminated
    // /readyz asks each worker with a 2 s bound: once w1 gives it no answer, w1 was held by the end
    // of that ask, and the primary has heard nothing from it 3 s after that.
    let asked = 0
    await waitFor(async () => {
      asked = Date.now()
      const body = (await (await request(`${gateway.adminUrl}/readyz`)).body.json()) as { checks: Record<string, string> }
      return body.checks.w1 === 'not ready: no answer within 2000 ms'
    }, '/readyz to say w1 does not answer', 20_000)
    await waitFor(() => Date.now() - asked > 5_500, 'w1 to be silent for three pings', 10_000)
    const started = Date.now()
    const res = await request(`${gateway.adminUrl}/api/routes`, { headers: { authorization: `Bearer ${TOKEN}` }, headersTimeout: 5_000, bodyTimeout: 5_000 })
    expect(res.statusCode).toBe(200)
    expect(((await res.body.json()) as Array<{ id: string }>).map((route) => route.id)).toEqual(['open'])
    expect(Date.now() - started).toBeLessThan(5_000)
    // The gateway's port is still served (by w2, for the connections the kernel gives it).
    const ready = (await (await request(`${gateway.adminUrl}/readyz`)).body.json()) as { checks: Record<string, string> }
    expect(ready.checks).toMatchObject({ w1: 'not ready: no answer within 2000 ms', w2: 'ready' })
    // The audit head is the first worker's chain's: it cannot be read now, said as such (it was a
    // 500 internal_error, which monitoring reads as the gateway's bug).
    const head = await request(`${gateway.adminUrl}/api/audit/head`, { headers: { authorization: `Bearer ${TOKEN}` }, headersTimeout: 10_000 })
    const problem = (await head.body.json()) as { code: string; detail: string }
    expect({ status: head.statusCode, code: problem.code, retryAfter: head.headers['retry-after'] }).toEqual({ status: 503, code: 'audit_unavailable', retryAfter: '5' })
    expect(problem.detail).toMatch(/^Worker w1, whose chain heads the answer, did not answer within 5 s/)
    expect(gateway.stderr()).not.toContain('worker stalled')
  } finally {
    w1.close()
  }
}, 60_000)
