// Request methods and path forms that an upstream reads differently from a naive gateway (issue 22
// points 1 and 2, issue 13 point 8), sent over a raw socket to the real gateway in front of a real
// echoing upstream: each is refused (or routed to the route the upstream would run) and what was
// refused never reaches the upstream. The setting is the probe's: `/api/admin/*` denied, `/api/*`
// allowed, and an upstream credential the gateway injects.
import { request } from 'undici'
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest'
import type { Explanation } from '../../src/gateway/explain.ts'
import { startTestGateway, type TestGateway } from '../helpers/gateway.ts'
import { AUDIENCE, startIdentityProvider, type TestIdentityProvider } from '../helpers/identity-provider.ts'
import { rawRequest, type RawResponse } from '../helpers/raw.ts'
import { startUpstream, type Received, type TestUpstream } from '../helpers/upstream.ts'
import { waitFor } from '../helpers/wait.ts'

const SECRET = 'gateway-held-secret-4f1c9a'
const ADMIN = 'path-forms-admin-token-0123456789'
let idp: TestIdentityProvider
let upstream: TestUpstream
let gateway: TestGateway
let caseSensitive: TestGateway
let token: string

function config(issuer: string, server: Record<string, unknown> = {}) {
  return {
    server,
    admin: { token: ADMIN },
    issuers: [{ name: 'corp-sso', issuer, audiences: [AUDIENCE] }],
    roles: [{ name: 'reports', assumed_by: [{ issuer: 'corp-sso', subject: 'looker-*' }], policies: ['api-but-admin'] }],
    policies: [{
      name: 'api-but-admin',
      statements: [
        { sid: 'AllowApi', effect: 'allow', actions: ['*'], routes: ['*'] },
        { sid: 'DenyAdmin', effect: 'deny', actions: ['*'], routes: ['api.admin'] },
      ],
    }],
    upstreams: [{ name: 'echo', url: upstream.url, headers: { authorization: `Bearer ${SECRET}` } }],
    routes: [
      { id: 'public', path: '/public/*', upstream: 'echo', public: true },
      { id: 'debug', methods: ['GET', 'TRACE'], path: '/debug/*', upstream: 'echo', public: true },
      { id: 'legacy', path: '/legacy/*', upstream: 'echo', public: true, path_params: true },
      { id: 'java', path: '/java/:id/*', upstream: 'echo', upstream_path: '/v2/:id/*', public: true, path_params: true },
      { id: 'api.admin', path: '/api/admin/*', upstream: 'echo' },
      { id: 'api', path: '/api/*', upstream: 'echo' },
    ],
  }
}

beforeAll(async () => {
  idp = await startIdentityProvider()
  upstream = await startUpstream()
  gateway = await startTestGateway(config(idp.issuer))
  caseSensitive = await startTestGateway(config(idp.issuer, { case_sensitive_paths: true }))
  for (const gw of [gateway, caseSensitive]) {
    await waitFor(() => gw.state.runtime.issuerKeys.get('corp-sso')?.state === 'ready', 'keys')
  }
  token = await idp.token('looker-reports')
})
afterAll(async () => {
  await gateway.close()
  await caseSensitive.close()
  await upstream.close()
  await idp.stop()
})
beforeEach(() => {
  upstream.received.length = 0
})

function send(method: string, target: string, gw = gateway): Promise<RawResponse> {
  const port = Number(new URL(gw.url).port)
  return rawRequest(port, `${method} ${target} HTTP/1.1\r\nHost: gw\r\nAuthorization: Bearer ${token}\r\nConnection: close\r\n\r\n`)
}

function code(res: RawResponse): string | undefined {
  return res.headers['content-type'] === 'application/problem+json' ? (JSON.parse(res.body) as { code: string }).code : undefined
}

/** A refusal comes from the gateway before any forwarding, so an empty `received` is final. */
async function expectRefused(method: string, target: string, status: number, expected: string, gw = gateway): Promise<RawResponse> {
  const res = await send(method, target, gw)
  expect({ status: res.status, code: code(res) }, `${method} ${target}`).toEqual({ status, code: expected })
  expect(upstream.received, `${method} ${target} reached the upstream`).toEqual([])
  return res
}

async function expectForwarded(method: string, target: string, gw = gateway): Promise<Received> {
  const res = await send(method, target, gw)
  expect(res.status, `${method} ${target}: ${res.body}`).toBe(200)
  expect(upstream.received).toHaveLength(1)
  return upstream.received[0] as Received
}

describe('TRACE, TRACK and CONNECT', () => {
  it('the probe: TRACE on a public route is 405 and the injected credential never reaches the upstream', async () => {
    const res = await expectRefused('TRACE', '/public/x', 405, 'method_not_allowed')
    expect(res.raw).not.toContain(SECRET)
    expect(JSON.parse(res.body)).toMatchObject({ detail: expect.stringContaining('only where a route lists them') })
  })

  it('GET on the same route is forwarded with the credential: the secret TRACE would have echoed', async () => {
    const received = await expectForwarded('GET', '/public/x')
    expect(received.headers.authorization).toBe(`Bearer ${SECRET}`)
  })

  it('TRACE on an authorized route with the default methods: 405, nothing forwarded', async () => {
    await expectRefused('TRACE', '/api/reports', 405, 'method_not_allowed')
  })

  it('TRACK is refused by the HTTP parser; CONNECT tunnels are refused', async () => {
    await expectRefused('TRACK', '/public/x', 400, 'bad_request')
    await expectRefused('CONNECT', 'gw:443', 400, 'bad_path')
    await expectRefused('CONNECT', '/public/x', 400, 'bad_path')
  })

  it('other methods stay in "*"', async () => {
    expect((await expectForwarded('PROPFIND', '/public/x')).method).toBe('PROPFIND')
    upstream.received.length = 0
    expect((await expectForwarded('OPTIONS', '/public/x')).method).toBe('OPTIONS')
  })

  it('a route that lists TRACE takes it', async () => {
    expect((await expectForwarded('TRACE', '/debug/x')).method).toBe('TRACE')
  })
})

describe('path parameters (;) that servlet containers strip', () => {
  it.each([
    '/api/admin;/users',
    '/api/admin;jsessionid=x/users',
    '/api/admin%3B/users',
    '/api/admin%3b/users',
    '/api/admin%3Bjsessionid%3Dx/users',
    '/api/ADMIN;x/users',
    '/api/admin/users;x',
    '/api/reports;x',
    '/api/;x/admin/users',
  ])('%s: 400 bad_path', async (target) => {
    await expectRefused('GET', target, 400, 'bad_path')
  })

  it('a route with path_params: true takes them and forwards them as sent', async () => {
    expect((await expectForwarded('GET', '/legacy/app;jsessionid=ABC/page')).url).toBe('/legacy/app;jsessionid=ABC/page')
    upstream.received.length = 0
    expect((await expectForwarded('GET', '/legacy/app%3bx%3dy/page')).url).toBe('/legacy/app%3Bx%3Dy/page')
  })

  it('a rewrite on such a route forwards the parameters and escapes of its captures as sent', async () => {
    expect((await expectForwarded('GET', '/java/7;jsessionid=X/a%3Db/c')).url).toBe('/v2/7;jsessionid=X/a%3Db/c')
  })

  it('path_params does not lift the other rules', async () => {
    await expectRefused('GET', '/legacy/app.;x/page', 400, 'bad_path')
    await expectRefused('GET', '/legacy/..;/api/admin/users', 400, 'bad_path')
  })
})

describe('segments that Windows servers trim', () => {
  it.each([
    '/api/admin./users',
    '/api/admin%2E/users',
    '/api/admin%2e/users',
    '/api/admin%20/users',
    '/api/admin.%20/users',
    '/api/admin%20%2E/users',
    '/api/admin%C2%A0/users',
    '/api/admin%E3%80%80/users',
    '/api/admin%09/users',
    '/api/admin.',
  ])('%s: 400 bad_path', async (target) => {
    await expectRefused('GET', target, 400, 'bad_path')
  })

  it('dots and spaces inside a segment are fine', async () => {
    expect((await expectForwarded('GET', '/api/report.v2%20final.json')).url).toBe('/api/report.v2%20final.json')
  })
})

describe('multiple encoding', () => {
  it.each([
    '/api/%252e%252e/admin/users',
    '/api/x/%252E%252E/admin/users',
    '/api/%25252e%25252e/admin/users',
    '/api/%2525252e%2525252e/admin/users',
    '/api/x%252fadmin/users',
    '/api/x%252F..%252Fadmin',
    '/api/x%25252fadmin',
    '/api/x%255cadmin',
    '/api/x%255C..%255Cadmin',
    '/api/%25%32%65%25%32%65/admin',
    '/api/admin%253B/users',
    '/api/admin%2520/users',
    '/api/admin%253Fx',
  ])('%s: 400 bad_path', async (target) => {
    await expectRefused('GET', target, 400, 'bad_path')
  })

  it('a double-encoded character that is none of those is forwarded as sent', async () => {
    expect((await expectForwarded('GET', '/api/100%2525/a%2541')).url).toBe('/api/100%2525/a%2541')
  })
})

describe('letter case', () => {
  it.each(['/api/ADMIN/users', '/api/Admin/users', '/API/ADMIN/USERS', '/api/adm%C4%B1n/users'])('%s is the admin route: 403, nothing forwarded', async (target) => {
    await expectRefused('GET', target, 403, 'policy_denied')
  })

  it('forwards the path in the case the client used', async () => {
    expect((await expectForwarded('GET', '/API/Reports/Q1')).url).toBe('/API/Reports/Q1')
  })

  it('matches case-sensitively with server.case_sensitive_paths: true', async () => {
    expect((await expectForwarded('GET', '/api/ADMIN/users', caseSensitive)).url).toBe('/api/ADMIN/users')
    upstream.received.length = 0
    await expectRefused('GET', '/api/admin/users', 403, 'policy_denied', caseSensitive)
  })
})

describe('reserved characters stay encoded', () => {
  it.each([
    ['/api/a%3Db', '/api/a%3Db'],
    ['/api/a%3db%2cc%40d%3Ae', '/api/a%3Db%2Cc%40d%3Ae'],
    ['/api/a=b,c@d:e', '/api/a=b,c@d:e'],
    ['/api/%7Euser/%41%62', '/api/~user/Ab'],
    ['/api/caf%C3%A9', '/api/caf%C3%A9'],
    ['//api///x', '/api/x'],
  ])('%s reaches the upstream as %s', async (target, forwarded) => {
    expect((await expectForwarded('GET', target)).url).toBe(forwarded)
  })
})

describe('explain agrees with the gateway', () => {
  const explain = async (method: string, path: string) => {
    const res = await request(`${gateway.adminUrl}/api/explain`, {
      method: 'POST',
      headers: { authorization: `Bearer ${ADMIN}`, 'content-type': 'application/json' },
      body: JSON.stringify({ method, path, claims: { iss: idp.issuer, sub: 'looker-reports', aud: AUDIENCE } }),
    })
    return ((await res.body.json()) as Explanation).decision
  }

  it('on TRACE, path parameters and letter case', async () => {
    expect(await explain('TRACE', '/public/x')).toMatchObject({ status: 405, code: 'method_not_allowed' })
    expect(await explain('GET', '/api/admin;x/users')).toMatchObject({ status: 400, code: 'bad_path' })
    expect(await explain('GET', '/api/ADMIN/users')).toMatchObject({ status: 403, code: 'policy_denied', statement: 'DenyAdmin' })
  })
})
