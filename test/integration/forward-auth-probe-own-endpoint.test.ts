// Found by an adversarial probe: a request described to forward-auth whose own path is the
// forward-auth endpoint's (/.bouncer/auth, or a path under it) matched that built-in endpoint,
// which is public, and was answered 200 "allowed" with no credential checked. Caddy's documented
// forward_auth snippet sends every request through the check, so a client's
// GET /.bouncer/auth/anything reached the API unauthenticated, and the audit log said "allow".
import { request } from 'undici'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { startTestGateway, type TestGateway } from '../helpers/gateway.ts'
import { AUDIENCE, startIdentityProvider, type TestIdentityProvider } from '../helpers/identity-provider.ts'
import { startUpstream, type TestUpstream } from '../helpers/upstream.ts'

let idp: TestIdentityProvider
let api: TestUpstream
let gw: TestGateway

beforeAll(async () => {
  idp = await startIdentityProvider()
  api = await startUpstream()
  gw = await startTestGateway({
    server: { trusted_proxies: ['127.0.0.1/32'], forward_auth_peers: ['127.0.0.1/32'] },
    issuers: [{ name: 'corp', issuer: idp.issuer, audiences: [AUDIENCE] }],
    upstreams: [{ name: 'api', url: api.url, headers: { 'X-Api-Key': 'k-own-endpoint' } }],
    routes: [{ id: 'everything', path: '/*', upstream: 'api' }],
  })
})

afterAll(async () => {
  await gw?.close()
  await api?.close()
  await idp?.stop()
})

describe('forward-auth asked about its own endpoint', () => {
  it('is refused (403 untrusted_proxy), never allowed unchecked, in every way a proxy describes it', async () => {
    const cases: Array<[string, Record<string, string>]> = [
      // Caddy's check for a client's GET /.bouncer/auth/admin (its snippet checks every path).
      ['/.bouncer/auth', { 'x-forwarded-method': 'GET', 'x-forwarded-uri': '/.bouncer/auth/admin', 'x-forwarded-host': 'api.example.com' }],
      ['/.bouncer/auth', { 'x-forwarded-method': 'GET', 'x-forwarded-uri': '/.bouncer/auth' }],
      ['/.bouncer/auth', { 'x-original-method': 'POST', 'x-original-uri': '/.bouncer/auth/orders/7?x=1' }],
      // Envoy's path-prefix form.
      ['/.bouncer/auth/.bouncer/auth/admin', {}],
    ]
    for (const [path, headers] of cases) {
      const res = await request(`${gw.url}${path}`, { headers })
      const text = await res.body.text()
      expect(res.statusCode, `${path} ${JSON.stringify(headers)}`).toBe(403)
      const body = JSON.parse(text) as { code?: string; detail?: string }
      expect(body.code).toBe('untrusted_proxy')
      expect(body.detail).toContain('/.bouncer/auth')
      expect(res.headers['x-api-key']).toBeUndefined()
    }
    // A request for the API's own paths is still decided as before (the route needs a token).
    const plain = await request(`${gw.url}/.bouncer/auth`, { headers: { 'x-original-method': 'GET', 'x-original-uri': '/orders/7' } })
    expect(plain.statusCode).toBe(401)
    await plain.body.dump()
  })
})
