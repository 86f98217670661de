// introspection.cache bounds how long a token revoked at the provider still works. Its answers aged
// on the wall clock: one set back an hour (an NTP correction, a VM resumed) kept an active answer an
// hour past the cache's time, the revoked token served all along. They age on the monotonic clock
// now; the token's exp stays the wall clock's.
import { request } from 'undici'
import { afterAll, beforeAll, expect, it, vi } from 'vitest'
import { startTestGateway, type TestGateway } from '../helpers/gateway.ts'
import { answerJson, startIntrospectionEndpoint, type TestIntrospectionEndpoint } from '../helpers/introspection-endpoint.ts'
import { startUpstream, type TestUpstream } from '../helpers/upstream.ts'
import { waitFor } from '../helpers/wait.ts'

const AUD = 'api://legacy'
let endpoint: TestIntrospectionEndpoint
let upstream: TestUpstream
let gw: TestGateway

beforeAll(async () => {
  // Only Date is faked (timers and performance.now stay real), before anything reads it.
  vi.useFakeTimers({ toFake: ['Date'] })
  vi.setSystemTime(new Date('2027-03-14T12:00:00.000Z'))
  endpoint = await startIntrospectionEndpoint()
  upstream = await startUpstream()
  gw = await startTestGateway({
    issuers: [{ name: 'legacy', issuer: 'https://legacy.test', audiences: [AUD], introspection: { url: endpoint.url, client_id: 'bouncer', client_secret: 'bouncer-secret', cache: '1s', negative_cache: '1s' } }],
    roles: [{ name: 'reader', assumed_by: [{ issuer: 'legacy', subject: '*' }], policies: ['read'] }],
    policies: [{ name: 'read', statements: [{ sid: 'Read', effect: 'allow', actions: ['GET'], routes: ['reports'] }] }],
    upstreams: [{ name: 'api', url: upstream.url }],
    routes: [{ id: 'reports', path: '/reports/*', upstream: 'api' }],
  })
}, 60_000)

afterAll(async () => {
  vi.useRealTimers()
  await gw?.close()
  await upstream?.close()
  await endpoint?.close()
})

async function status(token: string): Promise<number> {
  const res = await request(`${gw.url}/reports/daily`, { headers: { authorization: `Bearer ${token}` } })
  await res.body.dump()
  return res.statusCode
}

it('a token revoked at the provider is refused once introspection.cache has passed, however far the wall clock stepped back', async () => {
  // exp a day ahead of either clock: only the cache's time ends the answer.
  endpoint.answers.set('opaque-revoked', answerJson({ active: true, sub: 'svc', aud: AUD, exp: Math.floor(Date.now() / 1000) + 86_400 }))
  expect(await status('opaque-revoked')).toBe(200)
  vi.setSystemTime(new Date('2027-03-14T11:00:00.000Z')) // an hour back
  endpoint.answers.delete('opaque-revoked') // revoked: the endpoint answers it inactive
  await waitFor(async () => (await status('opaque-revoked')) === 401, 'the revocation seen', 4_000)
})
