// The workers' watchdog judged silence on the wall clock: stepped back (an NTP correction) just as a
// worker's event loop was held, the worker's last answer lay in the future, and it was not called
// stalled, nor replaced, for the size of the step: the connections the kernel gave it hung, and
// /readyz kept the instance out of its load balancer. The watchdog runs on the monotonic clock.
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, expect, it } from 'vitest'
import type { ServeProcess } from '../helpers/cli.ts'
import { evaluateInMain, inspectWorker } from '../helpers/inspector.ts'
import { startUpstream, type TestUpstream } from '../helpers/upstream.ts'
import { waitFor } from '../helpers/wait.ts'
import { serveWithWorkers } from '../helpers/workers.ts'

let dir: string
let upstream: TestUpstream
let gateway: ServeProcess

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'bouncer-workers-stall-clock-'))
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

it('a worker held just as the wall clock steps back an hour is called stalled after server.worker_stall_timeout, and replaced', async () => {
  const w2 = await inspectWorker(gateway.stderr, 'w2')
  try {
    w2.evaluate('for (;;) {}') // never returns: only terminating the thread ends it
    // The primary's wall clock, an hour back from now on.
    await evaluateInMain(gateway.stderr, '{ const wall = Date.now; Date.now = () => wall() - 3_600_000 }')
    await waitFor(() => lines('worker stalled').some((line) => line.includes('"worker":"w2"')), 'the watchdog to call w2 stalled', 20_000)
  } finally {
    w2.close()
  }
  const stalled = JSON.parse(lines('worker stalled').find((line) => line.includes('"worker":"w2"')) as string) as { silent_ms: number }
  expect(stalled.silent_ms).toBeGreaterThan(2_000)
  expect(stalled.silent_ms).toBeLessThan(60_000) // its silence, not the clock's step
  await waitFor(() => lines('worker listening').filter((line) => line.includes('"worker":"w2"')).length === 2, 'a replacement w2 to listen', 30_000)
}, 120_000)
