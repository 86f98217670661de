// The forward-auth endpoint on its own (SPEC "Callers, added"): who may ask, how the original
// request is described (nginx's, Traefik's and Caddy's headers, Envoy's path prefix), and that the
// answer is the gateway's own decision for that request. The real proxies: forward-auth-proxies.test.ts.
import { request } from 'undici'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { startTestGateway, type TestGateway } from '../helpers/gateway.ts'
import { AUDIENCE, startIdentityProvider, type TestIdentityProvider } from '../helpers/identity-provider.ts'
import { startUpstream, type TestUpstream } from '../helpers/upstream.ts'
import { waitFor } from '../helpers/wait.ts'

let idp: TestIdentityProvider
let api: TestUpstream
let trusted: TestGateway
let untrusted: TestGateway
let token: string

function config(peers: string[], trustedProxies = peers): Record<string, unknown> {
  return {
    server: { trusted_proxies: trustedProxies, forward_auth_peers: peers },
    issuers: [{ name: 'corp', issuer: idp.issuer, audiences: [AUDIENCE] }],
    roles: [{ name: 'reports', assumed_by: [{ issuer: 'corp' }], policies: ['read'] }],
    policies: [{
      name: 'read',
      statements: [
        { sid: 'ReadOrders', effect: 'allow', actions: ['GET'], routes: ['orders'] },
        { sid: 'AnyNotes', effect: 'allow', actions: ['*'], routes: ['notes'] },
        { sid: 'KeepNotes', effect: 'deny', actions: ['DELETE'], routes: ['notes'] },
      ],
    }],
    limits: [{ name: 'roomy', key: 'principal', rate: '100/s', burst: 100 }],
    upstreams: [{ name: 'orders-api', url: api.url, identity_assertion: true, headers: { 'X-Api-Key': 'k-forward-auth' } }],
    routes: [
      { id: 'orders', methods: ['GET', 'POST'], path: '/orders/*', upstream: 'orders-api', limits: ['roomy'] },
      { id: 'notes', methods: ['*'], path: '/notes/*', upstream: 'orders-api' },
      { id: 'everything', methods: ['GET'], path: '/*', upstream: 'orders-api', public: true },
    ],
  }
}

beforeAll(async () => {
  idp = await startIdentityProvider()
  api = await startUpstream()
  trusted = await startTestGateway(config(['127.0.0.1/32']))
  untrusted = await startTestGateway(config(['10.0.0.0/8']))
  await waitFor(() => trusted.state.runtime.issuerKeys.get('corp')?.state === 'ready', 'keys')
  token = await idp.token('looker-reports')
})

afterAll(async () => {
  await trusted?.close()
  await untrusted?.close()
  await api?.close()
  await idp?.stop()
})

async function ask(gw: TestGateway, headers: Record<string, string>, options: { path?: string; method?: string } = {}) {
  const res = await request(`${gw.url}${options.path ?? '/.bouncer/auth'}`, { method: options.method ?? 'GET', headers })
  const text = await res.body.text()
  return { status: res.statusCode, headers: res.headers, body: text === '' ? null : (JSON.parse(text) as Record<string, unknown>) }
}

const nginx = (method: string, uri: string) => ({ 'x-original-method': method, 'x-original-uri': uri })
const forwarded = (method: string, uri: string) => ({ 'x-forwarded-method': method, 'x-forwarded-uri': uri, 'x-forwarded-host': 'api.example.com' })

describe('forward-auth', () => {
  it('allowed: 200, no body, the assertion and the upstream\'s headers to copy, and the RateLimit headers', async () => {
    for (const describe of [nginx, forwarded]) {
      const { status, headers, body } = await ask(trusted, { ...describe('GET', '/orders/7?full=1'), authorization: `Bearer ${token}` })
      expect(status).toBe(200)
      expect(body).toBeNull()
      expect(headers['x-api-key']).toBe('k-forward-auth')
      expect(String(headers['x-bouncer-assertion'])).toMatch(/^ey[\w-]+\.[\w-]+\.[\w-]+$/)
      expect(headers.ratelimit).toMatch(/^"roomy";r=\d+;t=\d+$/)
    }
    expect(api.received).toEqual([]) // Bouncer decides; the proxy forwards
  })

  it('refused: the problem answer the gateway itself gives for that request', async () => {
    const noToken = await ask(trusted, nginx('GET', '/orders/7'))
    expect(noToken).toMatchObject({ status: 401, headers: { 'www-authenticate': 'Bearer' }, body: { code: 'missing_token' } })
    const denied = await ask(trusted, { ...forwarded('POST', '/orders/7'), authorization: `Bearer ${token}` })
    expect(denied).toMatchObject({ status: 403, body: { code: 'policy_denied' } })
    expect(String(denied.body?.detail)).toContain('No statement allows POST on route "orders"')
    expect(await ask(trusted, nginx('DELETE', '/orders/7'))).toMatchObject({ status: 405, body: { code: 'method_not_allowed' } })
    expect(await ask(trusted, nginx('GET', '/orders/%2e%2e/admin'))).toMatchObject({ status: 400, body: { code: 'bad_path' } })
    expect(await ask(trusted, nginx('CONNECT', '/orders/7'))).toMatchObject({ status: 400, body: { code: 'bad_path' } })
  })

  it('Envoy\'s form: the original path under /.bouncer/auth, with the check\'s own method', async () => {
    expect(await ask(trusted, { authorization: `Bearer ${token}` }, { path: '/.bouncer/auth/orders/7?x=1' })).toMatchObject({ status: 200, headers: { 'x-api-key': 'k-forward-auth' } })
    expect(await ask(trusted, { authorization: `Bearer ${token}` }, { path: '/.bouncer/auth/orders/7', method: 'POST' })).toMatchObject({ status: 403, body: { code: 'policy_denied' } })
    // A public route (the catch-all) for "/": no assertion, the upstream's header all the same.
    const root = await ask(trusted, {}, { path: '/.bouncer/auth/' })
    expect(root).toMatchObject({ status: 200, headers: { 'x-api-key': 'k-forward-auth' } })
    expect(root.headers['x-bouncer-assertion']).toBeUndefined()
  })

  it('a request described twice, in part, or not at all is refused (400), never decided for one of its descriptions', async () => {
    const cases: Array<[Record<string, string>, string?]> = [
      [{ ...nginx('GET', '/public'), ...forwarded('GET', '/orders/7') }],
      [nginx('GET', '/orders/7'), '/.bouncer/auth/orders/7'],
      [{ 'x-original-uri': '/orders/7' }],
      [{ 'x-forwarded-method': 'GET' }],
      [{}],
    ]
    for (const [headers, path] of cases) {
      const answer = await ask(trusted, { ...headers, authorization: `Bearer ${token}` }, { path })
      expect(answer, JSON.stringify(headers)).toMatchObject({ status: 400, body: { code: 'bad_request' } })
    }
    const twice = await request(`${trusted.url}/.bouncer/auth`, { headers: ['x-original-method', 'GET', 'x-original-uri', '/orders/1', 'x-original-uri', '/public'] })
    expect(twice.statusCode).toBe(400)
    await twice.body.dump()
  })

  // Found by an adversarial probe: methods are case-sensitive (RFC 9110 §9.1), and Caddy and Traefik
  // (Go's server) take `delete` from a client and describe it as is; the deny on DELETE did not
  // match it, the allow on "*" did, and ASP.NET or Werkzeug upstreams run it as DELETE.
  it('a described method with lower-case letters is refused (400), never decided past a deny on its upper-case form', async () => {
    expect(await ask(trusted, { ...forwarded('DELETE', '/notes/1'), authorization: `Bearer ${token}` })).toMatchObject({ status: 403, body: { code: 'policy_denied' } })
    for (const describe of [nginx, forwarded]) {
      const answer = await ask(trusted, { ...describe('delete', '/notes/1'), authorization: `Bearer ${token}` })
      expect(answer).toMatchObject({ status: 400, body: { code: 'bad_request', detail: 'The original method "delete" has lower-case letters: methods are case-sensitive, and every method the gateway routes is upper-case.' } })
    }
  })

  it('only from forward_auth_peers: anyone else gets 403 untrusted_proxy, and no credential', async () => {
    const { status, headers, body } = await ask(untrusted, { ...nginx('GET', '/orders/7'), authorization: `Bearer ${token}` })
    expect(status).toBe(403)
    expect(headers['x-api-key']).toBeUndefined()
    expect(body).toMatchObject({ code: 'untrusted_proxy' })
    expect(String(body?.detail)).toBe('Only the peers in server.forward_auth_peers may ask /.bouncer/auth; 127.0.0.1 is not one.')
  })

  // Found by an adversarial probe (helper): a load balancer in trusted_proxies (its X-Forwarded-For
  // believed) relays every client's request, /.bouncer/auth included: any client through it got the
  // upstream's credential. Asking is forward_auth_peers' alone.
  it('a trusted proxy that is not a forward-auth peer (a load balancer relaying clients) gets 403, and no credential', async () => {
    const relay = await startTestGateway(config([], ['127.0.0.1/32']))
    try {
      for (const path of ['/.bouncer/auth', '/.bouncer/auth/orders/7']) {
        const { status, headers, body } = await ask(relay, { ...(path === '/.bouncer/auth' ? nginx('GET', '/orders/7') : {}), authorization: `Bearer ${token}`, 'x-forwarded-for': '203.0.113.9' }, { path })
        expect(status, path).toBe(403)
        expect(headers['x-api-key']).toBeUndefined()
        expect(body).toMatchObject({ code: 'untrusted_proxy' })
      }
    } finally {
      await relay.close()
    }
  })

  it('a catch-all route never takes the endpoint\'s path', async () => {
    const res = await ask(untrusted, {}, { path: '/.bouncer/auth/anything' })
    expect(res.body).toMatchObject({ code: 'untrusted_proxy' })
  })
})
