// Found by an adversarial probe: forward-auth applies no CORS (docs/forward-auth.md, "CORS is the
// proxy's"), yet a described OPTIONS with Origin and Access-Control-Request-Method was matched as
// the gateway matches a preflight it answers itself: to the route of the method it names. The
// proxy was then told to forward an OPTIONS to a route that takes no OPTIONS (200, with the
// assertion and the upstream's credential to copy), where the gateway's own listener answers the
// preflight itself and forwards nothing. Described, it is the OPTIONS request it is: 405.
import { request } from 'undici'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { startTestGateway, type TestGateway } from '../helpers/gateway.ts'
import { AUDIENCE, startIdentityProvider, type TestIdentityProvider } from '../helpers/identity-provider.ts'
import { startUpstream, type TestUpstream } from '../helpers/upstream.ts'
import { waitFor } from '../helpers/wait.ts'

let idp: TestIdentityProvider
let api: TestUpstream
let gw: TestGateway
let token: string

const CORS = { origins: ['https://app.example'], methods: ['GET', 'DELETE'], headers: ['authorization'] }

beforeAll(async () => {
  idp = await startIdentityProvider()
  api = await startUpstream()
  gw = await startTestGateway({
    server: { trusted_proxies: ['127.0.0.1/32'], forward_auth_peers: ['127.0.0.1/32'] },
    issuers: [{ name: 'corp', issuer: idp.issuer, audiences: [AUDIENCE] }],
    roles: [{ name: 'any', assumed_by: [{ issuer: 'corp' }], policies: ['all'] }],
    policies: [{ name: 'all', statements: [{ sid: 'All', effect: 'allow', actions: ['*'], routes: ['*'] }] }],
    upstreams: [{ name: 'api', url: api.url, identity_assertion: true, headers: { 'X-Api-Key': 'k-preflight' } }],
    routes: [
      { id: 'notes', methods: ['DELETE'], path: '/notes/*', upstream: 'api', cors: CORS },
      { id: 'docs', methods: ['GET'], path: '/docs/*', upstream: 'api', public: true, cors: CORS },
    ],
  })
  await waitFor(() => gw.state.runtime.issuerKeys.get('corp')?.state === 'ready', 'keys')
  token = await idp.token('looker-reports')
})

afterAll(async () => {
  await gw?.close()
  await api?.close()
  await idp?.stop()
})

async function ask(path: string, method: string, headers: Record<string, string>) {
  const res = await request(`${gw.url}${path}`, { method, headers })
  const text = await res.body.text()
  return { status: res.statusCode, headers: res.headers, code: text === '' ? null : (JSON.parse(text) as { code: string }).code }
}

describe('a described preflight', () => {
  it('is matched as the OPTIONS it is: 405 on routes that take no OPTIONS, nothing to copy', async () => {
    const preflight = { origin: 'https://app.example', 'access-control-request-method': 'DELETE' }
    const asks: Array<[string, string, string, Record<string, string>]> = [
      ['nginx, with a token', '/.bouncer/auth', 'GET', { 'x-original-method': 'OPTIONS', 'x-original-uri': '/notes/1', authorization: `Bearer ${token}`, ...preflight }],
      ['caddy, public route', '/.bouncer/auth', 'GET', { 'x-forwarded-method': 'OPTIONS', 'x-forwarded-uri': '/docs/a', 'x-forwarded-host': 'api.example.com', origin: 'https://app.example', 'access-control-request-method': 'GET' }],
      ['envoy, with a token', '/.bouncer/auth/notes/1', 'OPTIONS', { authorization: `Bearer ${token}`, ...preflight }],
    ]
    for (const [name, path, method, headers] of asks) {
      const answer = await ask(path, method, headers)
      expect(answer.status, name).toBe(405)
      expect(answer.code, name).toBe('method_not_allowed')
      expect(answer.headers['x-api-key'], name).toBeUndefined()
      expect(answer.headers['x-bouncer-assertion'], name).toBeUndefined()
    }
  })

  it('the gateway\'s own listener still answers the preflight itself', async () => {
    const own = await ask('/notes/1', 'OPTIONS', { origin: 'https://app.example', 'access-control-request-method': 'DELETE' })
    expect(own.status).toBe(204)
    expect(own.headers['access-control-allow-origin']).toBe('https://app.example')
    expect(api.received).toEqual([])
  })
})
