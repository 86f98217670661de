// Found by the identity probe (a careless operator): README says /readyz "shows each issuer's state
// and last error", but an issuer that only introspects has no key set, and /readyz named it not at
// all — with a wrong introspection client_secret every opaque token was 503 and /readyz said nothing.
// It now shows the endpoint's last answer (introspection:NAME), without holding the gateway back, as
// an issuer whose keys are down does not.
import { request } from 'undici'
import { afterAll, beforeAll, expect, it } from 'vitest'
import { readyz, startTestGateway, type TestGateway } from '../helpers/gateway.ts'
import { answerJson, startIntrospectionEndpoint, type TestIntrospectionEndpoint } from '../helpers/introspection-endpoint.ts'
import { startUpstream, type TestUpstream } from '../helpers/upstream.ts'

let endpoint: TestIntrospectionEndpoint
let upstream: TestUpstream
let gw: TestGateway

beforeAll(async () => {
  endpoint = await startIntrospectionEndpoint()
  upstream = await startUpstream()
  gw = await startTestGateway({
    issuers: [{ name: 'legacy', issuer: 'https://legacy.test', audiences: ['api://legacy'], introspection: { url: endpoint.url, client_id: 'bouncer', client_secret: 'a-wrong-secret' } }],
    roles: [{ name: 'reader', assumed_by: [{ issuer: 'legacy' }], policies: ['read'] }],
    policies: [{ name: 'read', statements: [{ sid: 'Read', effect: 'allow', actions: ['GET'], routes: ['*'] }] }],
    upstreams: [{ name: 'api', url: upstream.url }],
    routes: [{ id: 'reports', path: '/reports/*', upstream: 'api' }],
  })
}, 60_000)

afterAll(async () => {
  await gw?.close()
  await upstream?.close()
  await endpoint?.close()
})

async function call(token: string): Promise<number> {
  const res = await request(`${gw.url}/reports/daily`, { headers: { authorization: `Bearer ${token}` } })
  await res.body.dump()
  return res.statusCode
}

it('names an issuer that only introspects, and its endpoint\'s last refusal, while staying ready', async () => {
  expect(await readyz(gw)).toEqual({ status: 200, checks: expect.objectContaining({ 'introspection:legacy': 'not asked yet' }) })
  endpoint.answers.set('opaque-1', (res) => res.writeHead(401).end())
  expect(await call('opaque-1')).toBe(503)
  expect(await readyz(gw)).toEqual({
    status: 200,
    checks: expect.objectContaining({ 'introspection:legacy': 'unavailable: the endpoint answered HTTP 401: check introspection.client_id and client_secret' }),
  })
  endpoint.answers.set('opaque-2', answerJson({ active: true, sub: 'alice', aud: 'api://legacy' }))
  expect(await call('opaque-2')).toBe(200)
  expect((await readyz(gw)).checks['introspection:legacy']).toBe('answering')
})
