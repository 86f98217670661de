// CORS per route (issue 17 point 4), as a browser meets it: preflights answered by the gateway with
// no credential, for the listed origins, methods and headers only; the CORS headers on every answer
// to a listed origin (refusals included, so the page can read them) and on none to another;
// `Vary: Origin` on every answer of the route; the upstream's own CORS headers replaced; under
// durability: sync a preflight answered once its record is committed.
import { join } from 'node:path'
import { request } from 'undici'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { searchAudit } from '../../src/audit/search.ts'
import { allowAnyCaller, startTestGateway, type TestGateway } from '../helpers/gateway.ts'
import { AUDIENCE, startIdentityProvider, type TestIdentityProvider } from '../helpers/identity-provider.ts'
import { startUpstream, type TestUpstream } from '../helpers/upstream.ts'
import { waitFor } from '../helpers/wait.ts'

const LOOKER = 'https://lookerstudio.google.com'

let idp: TestIdentityProvider
let upstream: TestUpstream
let gateway: TestGateway
let token: string

beforeAll(async () => {
  idp = await startIdentityProvider()
  // An upstream with CORS headers of its own, as many frameworks add by default.
  upstream = await startUpstream((_req, res) => {
    res.writeHead(200, { 'content-type': 'application/json', 'access-control-allow-origin': '*', 'access-control-allow-headers': '*', vary: 'Accept-Encoding' })
    res.end('{"rows":[]}')
  })
  gateway = await startTestGateway({
    issuers: [{ name: 'corp', issuer: idp.issuer, audiences: [AUDIENCE] }],
    ...allowAnyCaller(['corp']),
    upstreams: [{ name: 'api', url: upstream.url }],
    limits: [{ name: 'per-ip', key: 'ip', rate: '1000/s' }],
    routes: [
      {
        id: 'dash', methods: ['GET', 'POST'], path: '/dash/*', upstream: 'api', limits: ['per-ip'],
        cors: { origins: [LOOKER], methods: ['GET'], headers: ['Authorization'], expose_headers: ['RateLimit', 'Retry-After'], max_age: '10m' },
      },
      { id: 'app', path: '/app/*', upstream: 'api', cors: { origins: ['https://app.example.com'], methods: ['GET', 'POST'], headers: ['authorization', 'content-type'], credentials: true } },
      { id: 'open', path: '/public/*', upstream: 'api', public: true, cors: { origins: ['*'] } },
      { id: 'plain', methods: ['GET'], path: '/plain/*', upstream: 'api' },
    ],
  })
  await waitFor(() => gateway.state.runtime.issuerKeys.get('corp')?.state === 'ready', 'the issuer keys')
  token = await idp.token('looker-reports')
})

afterAll(async () => {
  await gateway?.close()
  await upstream?.close()
  await idp?.stop()
})

async function send(method: string, path: string, headers: Record<string, string>) {
  const res = await request(`${gateway.url}${path}`, { method: method as 'GET', headers })
  const text = await res.body.text()
  return { status: res.statusCode, headers: res.headers, body: text.startsWith('{') ? (JSON.parse(text) as Record<string, unknown>) : {} }
}

const preflight = (path: string, origin: string, method: string, requestHeaders?: string) =>
  send('OPTIONS', path, { origin, 'access-control-request-method': method, ...(requestHeaders ? { 'access-control-request-headers': requestHeaders } : {}) })

describe('a preflight', () => {
  it('from a listed origin, for a listed method and header, is answered by the gateway: 204, no credential asked, nothing sent upstream', async () => {
    const before = upstream.received.length
    const res = await preflight('/dash/sales', LOOKER, 'GET', 'authorization')
    expect(res.status).toBe(204)
    expect(res.headers).toMatchObject({
      'access-control-allow-origin': LOOKER,
      'access-control-allow-methods': 'GET',
      'access-control-allow-headers': 'authorization',
      'access-control-max-age': '600',
      vary: 'Origin, Access-Control-Request-Method, Access-Control-Request-Headers',
    })
    expect(res.headers).not.toHaveProperty('access-control-allow-credentials')
    expect(res.headers).not.toHaveProperty('ratelimit') // preflights take nothing from the route's limits
    expect(upstream.received.length).toBe(before)
  })

  it('from an origin not listed is 403 cors_origin_denied, with no CORS grant', async () => {
    for (const origin of ['https://evil.example', `${LOOKER}.evil.example`, 'null', LOOKER.toUpperCase()]) {
      const res = await preflight('/dash/sales', origin, 'GET')
      expect(res.status, origin).toBe(403)
      expect(res.body).toMatchObject({ code: 'cors_origin_denied', detail: expect.stringContaining('is not allowed on this route') })
      expect(res.headers).not.toHaveProperty('access-control-allow-origin')
      expect(res.headers.vary).toBe('Origin')
    }
  })

  it('asking for a method or a header not listed is 403 cors_origin_denied, saying which', async () => {
    // POST: the route takes it, its CORS does not.
    expect((await preflight('/dash/sales', LOOKER, 'POST')).body).toMatchObject({ code: 'cors_origin_denied', detail: `Origin "${LOOKER}" may not send "POST" requests on this route (allowed: GET).` })
    expect((await preflight('/dash/sales', LOOKER, 'GET', 'authorization, x-debug')).body).toMatchObject({
      code: 'cors_origin_denied', detail: `Origin "${LOOKER}" may not send the "x-debug" header on this route (allowed: authorization).`,
    })
    // DELETE: the route does not take it at all.
    expect((await preflight('/dash/sales', LOOKER, 'DELETE')).status).toBe(405)
  })

  it('with credentials: true, the origin is echoed and credentials allowed', async () => {
    const res = await preflight('/app/x', 'https://app.example.com', 'POST', 'content-type')
    expect(res.status).toBe(204)
    expect(res.headers).toMatchObject({ 'access-control-allow-origin': 'https://app.example.com', 'access-control-allow-credentials': 'true', 'access-control-allow-methods': 'GET, POST' })
  })

  it('on a route without cors is an OPTIONS request like any other', async () => {
    const res = await preflight('/plain/x', LOOKER, 'GET')
    expect(res.status).toBe(405)
    expect(res.headers).not.toHaveProperty('access-control-allow-origin')
  })
})

describe('an actual request', () => {
  it('from a listed origin gets the CORS headers, Vary: Origin beside the upstream\'s Vary, and not the upstream\'s own CORS headers', async () => {
    const res = await send('GET', '/dash/sales', { origin: LOOKER, authorization: `Bearer ${token}` })
    expect(res.status).toBe(200)
    expect(res.headers).toMatchObject({ 'access-control-allow-origin': LOOKER, 'access-control-expose-headers': 'RateLimit, Retry-After', vary: 'Accept-Encoding, Origin' })
    expect(res.headers).not.toHaveProperty('access-control-allow-headers')
  })

  it('refused by the gateway still carries them, so the page can read why', async () => {
    const res = await send('GET', '/dash/sales', { origin: LOOKER })
    expect(res.status).toBe(401)
    expect(res.body).toMatchObject({ code: 'missing_token' })
    expect(res.headers).toMatchObject({ 'access-control-allow-origin': LOOKER, vary: 'Origin' })
  })

  it('from an origin not listed is served as it would be, with no CORS headers at all', async () => {
    const res = await send('GET', '/dash/sales', { origin: 'https://evil.example', authorization: `Bearer ${token}` })
    expect(res.status).toBe(200)
    expect(Object.keys(res.headers).filter((h) => h.startsWith('access-control-'))).toEqual([])
    expect(res.headers.vary).toBe('Accept-Encoding, Origin')
  })

  it('without an Origin gets Vary: Origin only', async () => {
    const res = await send('GET', '/dash/sales', { authorization: `Bearer ${token}` })
    expect(Object.keys(res.headers).filter((h) => h.startsWith('access-control-'))).toEqual([])
    expect(res.headers.vary).toBe('Accept-Encoding, Origin')
  })

  it('origins ["*"] without credentials answers *', async () => {
    const res = await send('GET', '/public/x', { origin: 'https://anyone.example' })
    expect(res.headers['access-control-allow-origin']).toBe('*')
  })

  it('on a route without cors, the upstream\'s own CORS headers pass as they are', async () => {
    const res = await send('GET', '/plain/x', { origin: LOOKER, authorization: `Bearer ${token}` })
    expect(res.headers).toMatchObject({ 'access-control-allow-origin': '*', vary: 'Accept-Encoding' })
  })
})

describe('with audit.durability: sync', () => {
  it('a preflight\'s 204 comes once its record is committed, as every other answer does', async () => {
    // A long flush interval: a record is in SQLite at once only when it was committed before the answer.
    const synced = await startTestGateway((dir) => ({
      upstreams: [{ name: 'api', url: upstream.url }],
      routes: [{ id: 'open', path: '/public/*', upstream: 'api', public: true, cors: { origins: [LOOKER], methods: ['GET', 'POST'] } }],
      audit: { sinks: [{ type: 'sqlite', path: join(dir, 'audit.db') }], spill_dir: join(dir, 'spill'), durability: 'sync', flush_interval: '10s' },
    }))
    try {
      await (await request(`${synced.url}/public/x`)).body.dump() // its record makes the log
      const res = await request(`${synced.url}/public/x`, { method: 'OPTIONS', headers: { origin: LOOKER, 'access-control-request-method': 'POST', 'x-request-id': 'preflight-sync' } })
      await res.body.dump()
      expect(res.statusCode).toBe(204)
      const records = (await searchAudit({ type: 'sqlite', path: join(synced.dir, 'audit.db') }, { limit: 10 })).filter((r) => r.request_id === 'preflight-sync')
      expect(records).toMatchObject([{ route: 'open', method: 'OPTIONS', status: 204 }])
    } finally {
      await synced.close()
    }
  })
})
