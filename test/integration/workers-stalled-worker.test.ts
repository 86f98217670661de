// The primary answers /healthz for the process, so a worker whose event loop was held (a runaway
// synchronous task) was never restarted: the connections the kernel gave it hung, and /readyz —
// ready only while every running worker is — kept the instance out of its load balancer for good,
// while a liveness probe kept passing. The primary now pings each running worker every second and
// replaces one that has not answered for server.worker_stall_timeout, as it replaces a crashed one.
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { request } from 'undici'
import { afterAll, beforeAll, expect, it } from 'vitest'
import type { ServeProcess } from '../helpers/cli.ts'
import { evaluateInMain, inspectWorker } from '../helpers/inspector.ts'
import { startUpstream, type TestUpstream } from '../helpers/upstream.ts'
import { metricValue, waitFor } from '../helpers/wait.ts'
import { onNewConnection, serveWithWorkers } from '../helpers/workers.ts'

let dir: string
let upstream: TestUpstream
let gateway: ServeProcess

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'bouncer-workers-stalled-'))
  upstream = await startUpstream()
  ;({ gateway } = await serveWithWorkers(dir, () => ({
    server: { worker_stall_timeout: '2s' },
    upstreams: [{ name: 'api', url: upstream.url }],
    routes: [{ id: 'open', path: '/open/*', upstream: 'api', public: true }],
  }), { nodeArgs: ['--inspect=127.0.0.1:0'] }))
}, 120_000)

afterAll(async () => {
  await gateway?.stop('SIGKILL')
  await upstream?.close()
  await rm(dir, { recursive: true, force: true })
})

const lines = (msg: string) => gateway.stderr().split('\n').filter((line) => line.includes(`"msg":"${msg}`))
const readyz = async () => {
  const answer = await request(`${gateway.adminUrl}/readyz`)
  return { status: answer.statusCode, body: (await answer.body.json()) as { checks: Record<string, string> } }
}

it('a worker whose event loop is held for good is replaced after server.worker_stall_timeout, and the instance is ready again', async () => {
  expect((await readyz()).status).toBe(200)
  const w2 = await inspectWorker(gateway.stderr, 'w2')
  try {
    w2.evaluate('for (;;) {}') // never returns: only terminating the thread ends it
    await waitFor(() => lines('worker stalled').some((line) => line.includes('"worker":"w2"')), 'the watchdog to call w2 stalled', 20_000)
  } finally {
    w2.close()
  }
  const [stalled] = lines('worker stalled')
  expect(JSON.parse(stalled as string)).toMatchObject({ level: 'error', worker: 'w2', worker_stall_timeout_ms: 2_000, silent_ms: expect.any(Number) })
  expect(JSON.parse(stalled as string).silent_ms).toBeGreaterThan(2_000)

  await waitFor(() => lines('worker listening').filter((line) => line.includes('"worker":"w2"')).length === 2, 'a replacement w2 to listen', 30_000)
  await waitFor(async () => (await readyz()).status === 200, '/readyz to be ready again', 10_000)
  expect((await readyz()).body.checks.workers).toBe('2 of 2 running')
  expect(await metricValue(gateway.adminUrl, 'bouncer_worker_restarts_total')).toBe(1)
  // Every new connection is answered: none lands on a held thread.
  const answers = await Promise.all(Array.from({ length: 20 }, (_, i) => onNewConnection(`${gateway.url}/open/${i}`)))
  expect(answers.map((a) => a.status)).toEqual(Array(20).fill(200))
  // The other worker was never stalled: only w2 was called so.
  expect(lines('worker stalled').every((line) => line.includes('"worker":"w2"'))).toBe(true)
}, 120_000)

it('the primary held up itself (a long GC, a host that gave it no CPU) replaces no worker: it judges once it has read their answers', async () => {
  expect((await readyz()).status).toBe(200)
  const stalledBefore = lines('worker stalled').length
  const restartsBefore = await metricValue(gateway.adminUrl, 'bouncer_worker_restarts_total')
  // Twice the stall timeout: the workers' answers wait unread meanwhile.
  await evaluateInMain(gateway.stderr, '{ const until = Date.now() + 4_000; while (Date.now() < until) {} }')
  // A worker wrongly judged is called stalled at the first tick after (1 s): three ticks' time, bounded
  // (what is checked is that nothing happens, which no event marks).
  await new Promise((resolve) => setTimeout(resolve, 3_000))
  expect(lines('worker stalled').length).toBe(stalledBefore)
  expect(await metricValue(gateway.adminUrl, 'bouncer_worker_restarts_total')).toBe(restartsBefore)
  expect((await readyz()).body.checks.workers).toBe('2 of 2 running')
}, 60_000)
