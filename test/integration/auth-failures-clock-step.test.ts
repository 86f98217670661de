// An address held back by auth_failures was held until a wall-clock time: the clock stepped back
// (an NTP correction, a VM resumed) held it for the size of the step more, every request from it
// that needs an identity a 429 — a whole office behind one address, for hours. The hold now runs
// on the monotonic clock.
import { Agent, request } from 'undici'
import { afterAll, beforeAll, expect, it, vi } from 'vitest'
import { allowAnyCaller, startTestGateway, type TestGateway } from '../helpers/gateway.ts'
import { AUDIENCE, startIdentityProvider, type TestIdentityProvider } from '../helpers/identity-provider.ts'
import { startUpstream, type TestUpstream } from '../helpers/upstream.ts'
import { waitFor } from '../helpers/wait.ts'

let upstream: TestUpstream
let idp: TestIdentityProvider
let gw: TestGateway
const agent = new Agent({ localAddress: '127.0.0.3' })

beforeAll(async () => {
  // Only Date is faked (timers and performance.now stay real), before anything reads it.
  vi.useFakeTimers({ toFake: ['Date'] })
  vi.setSystemTime(new Date('2027-03-14T12:00:00.000Z'))
  upstream = await startUpstream((_req, res) => void res.end('ok'))
  idp = await startIdentityProvider()
  gw = await startTestGateway({
    issuers: [{ name: 'corp', issuer: idp.issuer, audiences: [AUDIENCE] }],
    ...allowAnyCaller(['corp']),
    upstreams: [{ name: 'api', url: upstream.url }],
    routes: [{ id: 'api', path: '/*', upstream: 'api' }],
    // A hold of 5 s: the three calls below come well within it on a loaded CI.
    auth_failures: { rate: '12/m', burst: 1 },
  })
}, 60_000)

afterAll(async () => {
  vi.useRealTimers()
  await agent.close()
  await gw?.close()
  await upstream?.close()
  await idp?.stop()
})

async function call(authorization: string) {
  const res = await request(`${gw.url}/x`, { dispatcher: agent, headers: { authorization } })
  await res.body.dump()
  return { status: res.statusCode, retryAfter: res.headers['retry-after'] }
}

it('an address held back is let go after the hold, however far the wall clock stepped back meanwhile', async () => {
  // The second failure spends the burst; the request after it is held back.
  expect((await call('Bearer not.a.token')).status).toBe(401)
  expect((await call('Bearer not.a.token')).status).toBe(401)
  const held = await call('Bearer not.a.token')
  expect(held.status).toBe(429)
  expect(Number(held.retryAfter)).toBeLessThanOrEqual(5)
  vi.setSystemTime(new Date('2027-03-14T10:00:00.000Z')) // two hours back
  const token = `Bearer ${await idp.token('looker-reports')}`
  // A valid credential is refused while the address is held, then served: seconds, not two hours.
  await waitFor(async () => (await call(token)).status === 200, 'the hold to end', 15_000)
})
