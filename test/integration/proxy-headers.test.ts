// SPEC "On the wire": what the upstream receives and what the client gets back.
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { request } from 'undici'
import { startTestGateway, type TestGateway } from '../helpers/gateway.ts'
import { rawRequest } from '../helpers/raw.ts'
import { startUpstream, type Received, type TestUpstream } from '../helpers/upstream.ts'

let upstream: TestUpstream
let base: TestUpstream
let gateway: TestGateway
let port: number

beforeAll(async () => {
  upstream = await startUpstream()
  base = await startUpstream()
  gateway = await startTestGateway({
    server: { trusted_proxies: ['127.0.0.2/32', '10.0.0.0/8'] },
    upstreams: [
      { name: 'echo', url: upstream.url, headers: { 'X-Api-Key': 'from-gateway', Authorization: 'Bearer upstream-credential' } },
      { name: 'plain', url: upstream.url },
      { name: 'based', url: `${base.url}/api/v2/` },
    ],
    routes: [
      { id: 'echo', path: '/echo/*', upstream: 'echo', public: true },
      { id: 'plain', path: '/plain/*', upstream: 'plain', public: true },
      { id: 'pass-auth', path: '/pass/*', upstream: 'plain', public: true, forward_authorization: true, upstream_path: '/*' },
      { id: 'rewrite', methods: ['GET'], path: '/sales/daily/:region', upstream: 'plain', upstream_path: '/v1/reports/daily/:region', public: true },
      { id: 'based', path: '/b/*', upstream: 'based', upstream_path: '/*', public: true },
    ],
  })
  port = Number(new URL(gateway.url).port)
})

afterAll(async () => {
  await gateway.close()
  await upstream.close()
  await base.close()
})

async function send(path: string, headers: Record<string, string> = {}, method = 'GET') {
  const res = await request(`${gateway.url}${path}`, { method, headers })
  const text = await res.body.text()
  const received = res.statusCode === 200 && text.startsWith('{"method"') ? (JSON.parse(text) as Received) : undefined
  return { status: res.statusCode, headers: res.headers, text, received }
}

describe('headers sent upstream', () => {
  it('removes the client Authorization, X-Bouncer-* and framework override headers', async () => {
    const { received } = await send('/plain/x', {
      authorization: 'Bearer client-token',
      'x-bouncer-assertion': 'forged',
      'X-Bouncer-Anything': 'forged',
      'x-original-url': '/admin',
      'x-rewrite-url': '/admin',
      'x-http-method-override': 'DELETE',
      'x-method-override': 'DELETE',
      'x-http-method': 'DELETE',
      'x-custom': 'kept',
    })
    const names = Object.keys(received?.headers ?? {})
    expect(names).not.toContain('authorization')
    expect(names.filter((n) => n.startsWith('x-bouncer-'))).toEqual([])
    for (const h of ['x-original-url', 'x-rewrite-url', 'x-http-method-override', 'x-method-override', 'x-http-method']) {
      expect(names).not.toContain(h)
    }
    expect(received?.headers['x-custom']).toBe('kept')
    expect(received?.method).toBe('GET')
  })

  it('passes Authorization on only where the route says forward_authorization', async () => {
    const { received } = await send('/pass/x', { authorization: 'Bearer client-token' })
    expect(received?.headers.authorization).toBe('Bearer client-token')
    expect(received?.url).toBe('/x')
  })

  it('sets the configured upstream headers; the client cannot override them', async () => {
    const { received } = await send('/echo/x', { 'x-api-key': 'from-client', authorization: 'Bearer client' })
    expect(received?.headers['x-api-key']).toBe('from-gateway')
    expect(received?.headers.authorization).toBe('Bearer upstream-credential')
    expect(received?.rawHeaders.filter((h) => h.toLowerCase() === 'x-api-key')).toHaveLength(1)
  })

  it('drops hop-by-hop headers and every header named in Connection', async () => {
    const res = await rawRequest(port, [
      'GET /plain/hop HTTP/1.1\r\nHost: gw\r\nConnection: keep-alive, X-Secret-Hop, close\r\nX-Secret-Hop: 1\r\n',
      'Keep-Alive: timeout=5\r\nTE: trailers\r\nProxy-Authorization: Basic eA==\r\nTrailer: X-T\r\nX-Kept: 1\r\n\r\n',
    ])
    const received = JSON.parse(res.body) as Received
    for (const h of ['x-secret-hop', 'keep-alive', 'te', 'proxy-authorization', 'trailer']) expect(received.headers).not.toHaveProperty(h)
    expect(received.headers['x-kept']).toBe('1')
  })

  it('never takes the upstream host from the request', async () => {
    const { received } = await send('/plain/x', { host: 'evil.example' })
    expect(received?.headers.host).toBe(`127.0.0.1:${upstream.port}`)
    expect(received?.headers).not.toHaveProperty('x-forwarded-host') // no server.hosts names it (issue 22.10)
  })

  it('rebuilds X-Forwarded-* for an untrusted peer, ignoring what the client claims', async () => {
    const { received } = await send('/plain/x', { 'x-forwarded-for': '6.6.6.6', 'x-forwarded-proto': 'https', 'x-forwarded-host': 'spoof', forwarded: 'for=6.6.6.6', 'x-real-ip': '6.6.6.6' })
    expect(received?.headers['x-forwarded-for']).toBe('127.0.0.1')
    expect(received?.headers['x-forwarded-proto']).toBe('http')
    expect(received?.headers).not.toHaveProperty('x-forwarded-host') // neither the client's nor its Host (issue 22.10)
    expect(received?.headers).not.toHaveProperty('forwarded')
    expect(received?.headers).not.toHaveProperty('x-real-ip')
  })

  it('appends to X-Forwarded-For and keeps -Proto/-Host from a trusted proxy', async () => {
    const res = await rawRequest(
      port,
      'GET /plain/x HTTP/1.1\r\nHost: gw\r\nX-Forwarded-For: 203.0.113.7, 10.1.1.1\r\nX-Forwarded-Proto: https\r\nX-Forwarded-Host: api.example.com\r\n\r\n',
      { localAddress: '127.0.0.2' },
    )
    const received = JSON.parse(res.body) as Received
    expect(received.headers['x-forwarded-for']).toBe('203.0.113.7, 10.1.1.1, 127.0.0.2')
    expect(received.headers['x-forwarded-proto']).toBe('https')
    expect(received.headers['x-forwarded-host']).toBe('api.example.com')
  })

  it('continues a valid X-Request-Id and echoes it', async () => {
    const { headers, received } = await send('/plain/x', { 'x-request-id': 'report-run.42_a' })
    expect(received?.headers['x-request-id']).toBe('report-run.42_a')
    expect(headers['x-request-id']).toBe('report-run.42_a')
  })

  it.each(['has space', 'x'.repeat(129), 'semi;colon', ''])('replaces an invalid X-Request-Id (%s) with a UUID', async (id) => {
    const { headers, received } = await send('/plain/x', { 'x-request-id': id })
    expect(headers['x-request-id']).toMatch(/^[0-9a-f-]{36}$/)
    expect(received?.headers['x-request-id']).toBe(headers['x-request-id'])
  })

  it('continues a W3C trace with a new parent id, and keeps tracestate', async () => {
    const incoming = '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01'
    const { received } = await send('/plain/x', { traceparent: incoming, tracestate: 'vendor=1' })
    const [version, traceId, parent, flags] = String(received?.headers.traceparent).split('-')
    expect([version, traceId, flags]).toEqual(['00', '4bf92f3577b34da6a3ce929d0e0e4736', '01'])
    expect(parent).toMatch(/^[0-9a-f]{16}$/)
    expect(parent).not.toBe('00f067aa0ba902b7')
    expect(received?.headers.tracestate).toBe('vendor=1')
  })

  // A client's tracestate was sent on as it came: 16 KB of it, or 40 members, or what is no tracestate at all.
  const long = (key: string) => `${key}=${'x'.repeat(200)}`
  it.each([
    ['two members with spaces', 'congo=t61rcWkgMzE , rojo=00f067aa0ba902b7', 'congo=t61rcWkgMzE,rojo=00f067aa0ba902b7'],
    ['33 members', Array.from({ length: 33 }, (_, i) => `k${i}=v`).join(','), undefined],
    ['a key twice', 'rojo=1,congo=2,rojo=3', undefined],
    ['an upper-case key', 'Vendor=1', undefined],
    ['a tab in a value', 'vendor=a\tb', undefined],
    ['over 512 characters', [long('a'), long('b'), 'vendor=1', long('c')].join(','), 'vendor=1'],
    ['over 512 characters of short members', Array.from({ length: 32 }, (_, i) => `k${String(i).padStart(2, '0')}=${'v'.repeat(20)}`).join(','), Array.from({ length: 20 }, (_, i) => `k${String(i).padStart(2, '0')}=${'v'.repeat(20)}`).join(',')],
  ])('tracestate with %s: sent upstream as W3C allows', async (_case, tracestate, sent) => {
    const { received } = await send('/plain/x', { traceparent: '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01', tracestate })
    expect(received?.headers.traceparent).toContain('4bf92f3577b34da6a3ce929d0e0e4736')
    expect(received?.headers.tracestate).toBe(sent)
  })

  it.each([undefined, 'garbage', '00-00000000000000000000000000000000-00f067aa0ba902b7-01', 'ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01'])(
    'starts a new trace when traceparent is %s',
    async (traceparent) => {
      const { received } = await send('/plain/x', traceparent ? { traceparent, tracestate: 'dropped=1' } : {})
      expect(received?.headers.traceparent).toMatch(/^00-[0-9a-f]{32}-[0-9a-f]{16}-01$/)
      expect(received?.headers.traceparent).not.toContain('4bf92f3577b34da6a3ce929d0e0e4736')
      expect(received?.headers).not.toHaveProperty('tracestate')
    },
  )
})

describe('paths sent upstream', () => {
  it('rewrites with params, re-encoding them', async () => {
    const { received } = await send('/sales/daily/north%20east?from=2026-01-01')
    expect(received?.url).toBe('/v1/reports/daily/north%20east?from=2026-01-01')
  })

  it('forwards the canonical path that was matched, not the raw one', async () => {
    const { received } = await send('/plain//a%7Eb/%41?q=%2F')
    expect(received?.url).toBe('/plain/a~b/A?q=%2F')
  })

  it('puts the upstream URL path in front', async () => {
    const res = await request(`${gateway.url}/b/items/1`)
    const received = (await res.body.json()) as Received
    expect(received.url).toBe('/api/v2/items/1')
  })
})

describe('routing over the wire', () => {
  it('404 route_not_found for a path no route matches', async () => {
    const { status, headers, text } = await send('/nowhere')
    expect(status).toBe(404)
    expect(headers['content-type']).toBe('application/problem+json')
    expect(JSON.parse(text)).toMatchObject({ code: 'route_not_found', request_id: headers['x-request-id'] })
  })

  it('405 method_not_allowed with Allow when only the method differs', async () => {
    const { status, headers, text } = await send('/sales/daily/eu', {}, 'DELETE')
    expect(status).toBe(405)
    expect(headers.allow).toBe('GET, HEAD') // a route that takes GET takes its HEAD
    expect(JSON.parse(text)).toMatchObject({ code: 'method_not_allowed' })
  })
})

describe('responses', () => {
  // 'Keep-Alive' alone names no field: no set of named fields is made (connectionNamed, http/managed-headers.ts).
  it.each([
    ['keep-alive, x-hop', true],
    ['Keep-Alive', false],
    ['close, X-Hop', true],
  ])('drops hop-by-hop response headers and adds X-Request-Id (Connection: %s)', async (connection, hopNamed) => {
    const odd = await startUpstream((_req, res) => {
      res.writeHead(200, { connection, 'x-hop': '1', 'keep-alive': 'timeout=9', 'x-end': 'kept', 'x-request-id': 'upstream-id' })
      res.end('ok')
    })
    const gw = await startTestGateway({ upstreams: [{ name: 'odd', url: odd.url }], routes: [{ id: 'odd', path: '/*', upstream: 'odd', public: true }] })
    const res = await rawRequest(Number(new URL(gw.url).port), 'GET /x HTTP/1.1\r\nHost: gw\r\nX-Request-Id: mine\r\n\r\n')
    expect(res.status).toBe(200)
    expect(res.headers['x-end']).toBe('kept')
    if (hopNamed) expect(res.headers).not.toHaveProperty('x-hop')
    else expect(res.headers['x-hop']).toBe('1')
    expect(res.headers['keep-alive']).not.toBe('timeout=9')
    expect(res.headers['x-request-id']).toBe('mine')
    await gw.close()
    await odd.close()
  })

  it('passes status, body and repeated headers through untouched', async () => {
    const teapot = await startUpstream((_req, res) => {
      res.writeHead(418, { 'set-cookie': ['a=1', 'b=2'], 'content-type': 'text/plain' })
      res.end('short and stout')
    })
    const gw = await startTestGateway({ upstreams: [{ name: 't', url: teapot.url }], routes: [{ id: 't', path: '/*', upstream: 't', public: true }] })
    const res = await request(`${gw.url}/x`)
    expect(res.statusCode).toBe(418)
    expect(res.headers['set-cookie']).toEqual(['a=1', 'b=2'])
    expect(await res.body.text()).toBe('short and stout')
    await gw.close()
    await teapot.close()
  })
})
