// Found by the limits/forward-auth probe (limfa2): Caddy and Traefik ask forward-auth with a GET
// whatever the original method, and describe it in X-Forwarded-Method. A refused HEAD (401, 403,
// 429) was answered as the HEAD it describes: its problem's Content-Length, and no body. The proxy
// reading a GET's answer waited for those bytes, and on a kept-alive connection took the start of
// the next check's answer for them: a HEAD without a token behind Caddy hung until the client gave
// up, and the check after it on that connection was answered with garbage. A refusal's body follows
// the check's own method. nginx asks with a GET too, but on a connection it closes after each
// check: it got by before, and is kept here beside Caddy.
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { request } from 'undici'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { proxyAvailable, startForwardAuthProxy, type ForwardAuthProxy } from '../helpers/forward-auth-proxy.ts'
import { startTestGateway, type TestGateway } from '../helpers/gateway.ts'
import { AUDIENCE, startIdentityProvider, type TestIdentityProvider } from '../helpers/identity-provider.ts'
import { rawRequest } from '../helpers/raw.ts'
import { startUpstream, type TestUpstream } from '../helpers/upstream.ts'
import { waitFor } from '../helpers/wait.ts'

let dir: string
let idp: TestIdentityProvider
let api: TestUpstream
let gw: TestGateway
let token: string

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'bouncer-lf2-head-'))
  idp = await startIdentityProvider()
  api = await startUpstream()
  gw = await startTestGateway({
    server: { trusted_proxies: ['127.0.0.1/32'], forward_auth_peers: ['127.0.0.1/32'] },
    issuers: [{ name: 'corp', issuer: idp.issuer, audiences: [AUDIENCE] }],
    roles: [{ name: 'reports', assumed_by: [{ issuer: 'corp' }], policies: ['read'] }],
    policies: [{ name: 'read', statements: [{ sid: 'ReadOrders', effect: 'allow', actions: ['GET'], routes: ['orders'] }] }],
    upstreams: [{ name: 'orders-api', url: api.url, headers: { 'X-Upstream-Key': 'orders-api-key-42' } }],
    routes: [
      { id: 'orders', methods: ['GET'], path: '/orders/*', upstream: 'orders-api' },
      { id: 'health', path: '/health', upstream: 'orders-api', public: true },
    ],
  })
  await waitFor(() => gw.state.runtime.issuerKeys.get('corp')?.state === 'ready', 'issuer keys')
  token = await idp.token('looker-reports')
}, 30_000)

afterAll(async () => {
  await gw?.close()
  await api?.close()
  await idp?.stop()
  await rm(dir, { recursive: true, force: true })
})

describe('a refused HEAD described by a GET check', () => {
  it('is answered with the problem body the check\'s Content-Length announces', async () => {
    const port = Number(new URL(gw.url).port)
    const check = (method: string) => `GET /.bouncer/auth HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Forwarded-Method: ${method}\r\nX-Forwarded-Uri: /orders/1\r\n\r\n`
    // Two checks on one connection, as a proxy's keep-alive pool sends them.
    const answer = await rawRequest(port, check('HEAD') + check('GET'), { timeout: 2_000 })
    const heads = answer.raw.split(/(?=HTTP\/1\.1 )/)
    expect(heads).toHaveLength(2)
    for (const one of heads) {
      const [head, body] = one.split('\r\n\r\n') as [string, string]
      expect(head).toMatch(/^HTTP\/1\.1 401 /)
      expect(Buffer.byteLength(body, 'latin1')).toBe(Number(/content-length: (\d+)/i.exec(head)?.[1]))
      expect(JSON.parse(body)).toMatchObject({ code: 'missing_token' })
    }
  })

  it('a HEAD check still gets no body', async () => {
    const port = Number(new URL(gw.url).port)
    const answer = await rawRequest(port, 'HEAD /.bouncer/auth HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Original-Method: HEAD\r\nX-Original-URI: /orders/1\r\nConnection: close\r\n\r\n', { timeout: 2_000 })
    expect(answer.status).toBe(401)
    expect(answer.raw.split('\r\n\r\n')[1]).toBe('')
  })
})

describe.each([['caddy'], ['nginx']] as const)('behind %s (both ask with a GET)', (kind) => {
  let proxy: ForwardAuthProxy
  beforeAll(async () => {
    if (proxyAvailable(kind)) proxy = await startForwardAuthProxy(kind, dir, gw.url, api.port, '/health')
  }, 30_000)
  afterAll(async () => {
    await proxy?.stop()
  })

  it.runIf(proxyAvailable(kind))('a HEAD without a token gets 401 at once, and the requests after it are answered', async () => {
    const head = await request(`${proxy.url}/orders/1`, { method: 'HEAD', headersTimeout: 3_000, bodyTimeout: 3_000 })
    await head.body.dump()
    expect(head.statusCode).toBe(401)
    expect(head.headers['www-authenticate']).toBe('Bearer')
    for (let i = 0; i < 3; i++) {
      const get = await request(`${proxy.url}/orders/${i}`, { headers: { authorization: `Bearer ${token}` }, headersTimeout: 3_000, bodyTimeout: 3_000 })
      await get.body.dump()
      expect(get.statusCode).toBe(200)
    }
    const refused = await request(`${proxy.url}/orders/9`, { headersTimeout: 3_000, bodyTimeout: 3_000 })
    expect(refused.statusCode).toBe(401)
    if (kind === 'caddy') expect(await refused.body.json()).toMatchObject({ code: 'missing_token' }) // nginx answers with its own page
    else await refused.body.dump()
  })
})
