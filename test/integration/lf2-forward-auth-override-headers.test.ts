// Found by the limits/forward-auth probe (limfa2): the headers that make a POST run as another
// method — X-HTTP-Method-Override (Symfony and Laravel obey it on every POST, Rails' Rack,
// ASP.NET Core, Express's method-override), X-HTTP-Method (OData), X-Method-Override — are
// removed where the gateway forwards itself. Behind forward-auth the proxy forwards, and nginx and
// Caddy pass the client's headers on to the API: a POST with X-HTTP-Method-Override: DELETE was
// decided as a POST (200) and the API ran a DELETE the policies deny. They are now decided as a
// POST's `_method` is (README path rule 7): the route must take the method named, the policies
// must allow both. Real nginx and Caddy, with the snippets of docs/forward-auth.md.
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { request } from 'undici'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { recordedOverride } from '../../src/admin/replay.ts'
import { proxyAvailable, startForwardAuthProxy, type ForwardAuthProxy } from '../helpers/forward-auth-proxy.ts'
import { startTestGateway, type TestGateway } from '../helpers/gateway.ts'
import { AUDIENCE, startIdentityProvider, type TestIdentityProvider } from '../helpers/identity-provider.ts'
import { startUpstream, type Received, type TestUpstream } from '../helpers/upstream.ts'
import { waitFor } from '../helpers/wait.ts'

const ADMIN = 'lf2-override-admin-token-0123456789'
let dir: string
let idp: TestIdentityProvider
let api: TestUpstream
let gw: TestGateway
let token: string

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'bouncer-lf2-override-'))
  idp = await startIdentityProvider()
  api = await startUpstream()
  gw = await startTestGateway({
    server: { trusted_proxies: ['127.0.0.1/32'], forward_auth_peers: ['127.0.0.1/32'] },
    admin: { token: ADMIN },
    audit: { sinks: [{ type: 'sqlite', path: join(dir, 'audit.db') }], spill_dir: join(dir, 'spill'), flush_interval: '20ms' },
    issuers: [{ name: 'corp', issuer: idp.issuer, audiences: [AUDIENCE] }],
    roles: [{ name: 'writers', assumed_by: [{ issuer: 'corp' }], policies: ['notes'] }],
    policies: [{
      name: 'notes',
      statements: [
        { sid: 'WriteNotes', effect: 'allow', actions: ['*'], routes: ['notes', 'posts'] },
        { sid: 'KeepNotes', effect: 'deny', actions: ['DELETE'], routes: ['notes'] },
      ],
    }],
    upstreams: [{ name: 'notes-api', url: api.url }],
    routes: [
      { id: 'notes', methods: ['*'], path: '/notes/*', upstream: 'notes-api' },
      { id: 'posts', methods: ['GET', 'POST'], path: '/posts/*', upstream: 'notes-api' },
      { id: 'ping', methods: ['GET', 'POST'], path: '/ping', upstream: 'notes-api', public: true },
      { id: 'health', path: '/health', upstream: 'notes-api', public: true },
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

async function ask(headers: Record<string, string>) {
  const res = await request(`${gw.url}/.bouncer/auth`, { headers })
  const text = await res.body.text()
  return { status: res.statusCode, body: text === '' ? {} : (JSON.parse(text) as Record<string, unknown>) }
}

const described = (method: string, uri: string) => ({ 'x-forwarded-method': method, 'x-forwarded-uri': uri, 'x-forwarded-host': 'api.example.com' })

describe('a described POST with a method-override header', () => {
  it('is decided as the method it names too: a deny of that method wins', async () => {
    for (const name of ['X-HTTP-Method-Override', 'X-HTTP-Method', 'X-Method-Override', 'x_http_method_override']) {
      const refused = await ask({ ...described('POST', '/notes/1'), authorization: `Bearer ${token}`, [name]: 'delete' })
      expect(refused, name).toMatchObject({ status: 403, body: { code: 'policy_denied', detail: expect.stringContaining('asks for DELETE') } })
    }
    // The console's trace explains such a record as the POST with the method it named (explain takes no headers).
    const refused = await ask({ ...described('POST', '/notes/2'), authorization: `Bearer ${token}`, 'x-http-method-override': 'DELETE' })
    expect(recordedOverride({ method: 'POST', path: '/notes/2', detail: String(refused.body.detail) })).toEqual({ path: '/notes/2?_method=DELETE' })
    // The first of a list is what Express's method-override reads; every one is decided.
    expect((await ask({ ...described('POST', '/notes/1'), authorization: `Bearer ${token}`, 'x-http-method-override': 'PATCH, DELETE' })).status).toBe(403)
  })

  it('is allowed when the policies allow both, and a POST naming itself is a POST', async () => {
    expect((await ask({ ...described('POST', '/notes/1'), authorization: `Bearer ${token}`, 'x-http-method-override': 'PUT' })).status).toBe(200)
    expect((await ask({ ...described('POST', '/notes/1'), authorization: `Bearer ${token}`, 'x-http-method-override': 'post' })).status).toBe(200)
    // Only a POST is overridden by those frameworks.
    expect((await ask({ ...described('PUT', '/notes/1'), authorization: `Bearer ${token}`, 'x-http-method-override': 'DELETE' })).status).toBe(200)
  })

  it('gets what the named method gets at that path: 405 where the route does not take it, 400 for no method', async () => {
    const notTaken = await ask({ ...described('POST', '/posts/1'), authorization: `Bearer ${token}`, 'x-http-method-override': 'DELETE' })
    expect(notTaken).toMatchObject({ status: 405, body: { code: 'method_not_allowed' } })
    const publicRoute = await ask({ ...described('POST', '/ping'), 'x-http-method-override': 'DELETE' })
    expect(publicRoute).toMatchObject({ status: 405, body: { code: 'method_not_allowed' } })
    const garbage = await ask({ ...described('POST', '/notes/1'), authorization: `Bearer ${token}`, 'x-http-method-override': 'DEL ETE' })
    expect(garbage).toMatchObject({ status: 400, body: { code: 'bad_request' } })
  })
})

describe.each([['nginx'], ['caddy']] as const)('behind %s', (kind) => {
  let proxy: ForwardAuthProxy
  beforeAll(async () => {
    if (proxyAvailable(kind)) proxy = await startForwardAuthProxy(kind, dir, gw.url, api.port, '/health')
  }, 30_000)
  afterAll(async () => {
    await proxy?.stop()
  })

  it.runIf(proxyAvailable(kind))('a POST overridden to a denied DELETE never reaches the API, and its record says why', async () => {
    const before = api.received.length
    const path = `/notes/${kind}-override`
    const res = await request(`${proxy.url}${path}`, { method: 'POST', body: 'x', headers: { authorization: `Bearer ${token}`, 'x-http-method-override': 'DELETE' } })
    await res.body.dump()
    expect(res.statusCode).toBe(403)
    expect(api.received.slice(before) as Received[]).toEqual([])
    let rows: Array<{ path: string; code: string | null; statement: string | null }> = []
    await waitFor(async () => {
      const audit = await request(`${gw.adminUrl}/api/audit?limit=100`, { headers: { authorization: `Bearer ${ADMIN}` } })
      rows = ((await audit.body.json()) as typeof rows).filter((r) => r.path === path)
      return rows.length > 0
    }, 'the audit record')
    expect(rows[0]).toMatchObject({ code: 'policy_denied', statement: 'KeepNotes' })
    // A bare POST still passes.
    const plain = await request(`${proxy.url}${path}`, { method: 'POST', body: 'x', headers: { authorization: `Bearer ${token}` } })
    await plain.body.dump()
    expect(plain.statusCode).toBe(200)
  })
})
