// The drain's deadline (server.shutdown_timeout) ran on the wall clock: one stepped back mid-drain
// (an NTP correction) held the drain for the size of the step with a request that does not end,
// until a supervisor's SIGKILL lost the audit log's last records. It runs on the monotonic clock.
// Here Date is frozen (faked), the extreme of a clock that does not move forward.
import { request } from 'undici'
import { afterAll, beforeAll, expect, it, vi } from 'vitest'
import { startTestGateway, type TestGateway } from '../helpers/gateway.ts'
import { startUpstream, type TestUpstream } from '../helpers/upstream.ts'
import { deferred, waitFor } from '../helpers/wait.ts'

const answer = deferred()
let upstream: TestUpstream
let gw: TestGateway

beforeAll(async () => {
  vi.useFakeTimers({ toFake: ['Date'] })
  vi.setSystemTime(new Date('2027-03-14T12:00:00.000Z'))
  upstream = await startUpstream(async (_req, res) => {
    await answer.promise
    res.end('late')
  })
  gw = await startTestGateway({
    server: { shutdown_timeout: '1s' },
    upstreams: [{ name: 'api', url: upstream.url }],
    routes: [{ id: 'api', path: '/*', upstream: 'api', public: true }],
  })
}, 60_000)

afterAll(async () => {
  vi.useRealTimers()
  answer.resolve()
  await gw?.close() // a failed test's gateway; a second shutdown returns at once
  await upstream?.close()
})

it('a drain with a request that does not end stops at shutdown_timeout, whatever the wall clock does', async () => {
  const held = request(`${gw.url}/hold`).then((res) => res.body.text(), (err: Error) => err.message)
  await waitFor(() => upstream.started.includes('/hold'), 'the held request at its upstream')
  const started = performance.now()
  await gw.close()
  const tookMs = performance.now() - started
  expect(tookMs).toBeLessThan(10_000) // 1 s and the closes' own steps; without the fix, never
  expect(await held).not.toBe('late') // cut at the deadline, not answered
}, 30_000)
