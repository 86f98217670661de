// With server.workers, /readyz showed a worker that gave no answer within its bound only as "not
// ready", the time the primary waited swallowed; the limits store's check says "no answer for N ms".
// A silent worker is now said so with the bound, told apart from one that answered not ready.
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { request } from 'undici'
import { afterAll, beforeAll, expect, it } from 'vitest'
import type { ServeProcess } from '../helpers/cli.ts'
import { inspectWorker } from '../helpers/inspector.ts'
import { waitFor } from '../helpers/wait.ts'
import { serveWithWorkers } from '../helpers/workers.ts'

let dir: string
let gateway: ServeProcess

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'bouncer-fx2-readyz-silent-'))
  ;({ gateway } = await serveWithWorkers(dir, () => ({
    audit: { sinks: [{ type: 'sqlite', path: join(dir, 'audit.db') }] },
    // Longer than the test: the held worker is not replaced meanwhile.
    server: { worker_stall_timeout: '60s' },
    routes: [],
  }), { nodeArgs: ['--inspect=127.0.0.1:0'] }))
}, 60_000)

afterAll(async () => {
  await gateway?.stop('SIGKILL')
  await rm(dir, { recursive: true, force: true })
})

it('/readyz names a worker that does not answer in time with the time it waited', async () => {
  await waitFor(async () => {
    const res = await request(`${gateway.adminUrl}/readyz`)
    await res.body.dump()
    return res.statusCode === 200
  }, 'the gateway to be ready', 10_000)
  const w1 = await inspectWorker(gateway.stderr, 'w1')
  try {
    w1.evaluate('for (;;) {}') // held until the thread is terminated
    // Until the inspector has run the loop, w1 may still answer ready: a few asks at most.
    let checks: Record<string, string> = {}
    await waitFor(async () => {
      const res = await request(`${gateway.adminUrl}/readyz`, { headersTimeout: 8_000 })
      checks = ((await res.body.json()) as { checks: Record<string, string> }).checks
      return checks.w1 !== 'ready'
    }, '/readyz to say w1 does not answer', 12_000)
    expect(checks.w1).toBe('not ready: no answer within 2000 ms')
  } finally {
    w1.close()
  }
}, 20_000)
