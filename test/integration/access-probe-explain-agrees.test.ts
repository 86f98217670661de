// Property (the access probe): for any request — claims of any JSON type (a number for a string, an
// array, an object, null, a dotted name), an act claim of any shape (nested, a string, an array, no
// sub), any method, a path in any form (encoded, dot segments, doubled or trailing slashes, `;`, a
// `_method`), a client address behind a trusted proxy (IPv4-mapped IPv6 too) — POST /api/explain's
// decision is the status and code the gateway answers the same request with, and its reason holds
// the detail of the gateway's refusal. Sent raw: a URL parser would resolve `%2e%2e` and `//` first.
import fc from 'fast-check'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { Explanation } from '../../src/gateway/explain.ts'
import { explainAt, startTestGateway, type TestGateway } from '../helpers/gateway.ts'
import { AUDIENCE, startIdentityProvider, type TestIdentityProvider } from '../helpers/identity-provider.ts'
import { startUpstream, type TestUpstream } from '../helpers/upstream.ts'
import { rawRequest } from '../helpers/raw.ts'
import { waitFor } from '../helpers/wait.ts'

const ADMIN = 'access-probe-explain-agrees-admin-01'
let idp: TestIdentityProvider
let upstream: TestUpstream
let gateway: TestGateway

beforeAll(async () => {
  idp = await startIdentityProvider()
  upstream = await startUpstream()
  gateway = await startTestGateway({
    server: { trusted_proxies: ['127.0.0.1/32'] },
    admin: { token: ADMIN },
    issuers: [{ name: 'corp', issuer: idp.issuer, audiences: [AUDIENCE] }],
    roles: [
      { name: 'readers', assumed_by: [{ issuer: 'corp', claims: { groups: 'read*' } }], policies: ['read'] },
      { name: 'acme', assumed_by: [{ issuer: 'corp', claims: { tenant: 'acme' } }], policies: ['acme'] },
      { name: 'svc', assumed_by: [{ issuer: 'corp', subject: 'svc-*' }], policies: ['svc'] },
      { name: 'level-one', assumed_by: [{ issuer: 'corp', claims: { level: '1', 'org.unit': 'ops' } }], policies: ['ops'] },
      { name: 'agents', assumed_by: [{ issuer: 'corp', subject: 'agent-?' }], policies: ['agent'] },
    ],
    policies: [
      { name: 'read', statements: [
        { sid: 'ReadApi', effect: 'allow', actions: ['GET'], routes: ['api.*'] },
        { sid: 'NoBlocked', effect: 'deny', actions: ['*'], routes: ['api.secret'], conditions: { claims: { blocked: 'true' } } },
      ] },
      { name: 'acme', statements: [
        { sid: 'AcmeWrites', effect: 'allow', actions: ['POST', 'DELETE'], routes: ['api.items'], conditions: { source_ip: ['10.0.0.0/8'] } },
        { sid: 'NoDeleteFrom109', effect: 'deny', actions: ['DELETE'], routes: ['api.*'], conditions: { source_ip: ['10.9.0.0/16'], claims: { tenant: 'acme' } } },
      ] },
      { name: 'svc', statements: [{ sid: 'SvcAdmin', effect: 'allow', actions: ['*'], routes: ['*'], conditions: { claims: { scope: 'admin' } } }] },
      { name: 'ops', statements: [{ sid: 'OpsDotted', effect: 'allow', actions: ['GET', 'PUT'], routes: ['api.v1.*'] }] },
      { name: 'agent', statements: [
        { sid: 'AgentReadWrite', effect: 'allow', actions: ['GET', 'POST'], routes: ['api.*'] },
        { sid: 'AgentNoSecret', effect: 'deny', actions: ['POST'], routes: ['api.secret'] },
      ] },
    ],
    upstreams: [{ name: 'svc', url: upstream.url }],
    routes: [
      { id: 'api.items', methods: ['GET', 'POST', 'DELETE'], path: '/items/:id', upstream: 'svc' },
      { id: 'api.secret', methods: ['GET', 'POST'], path: '/secret', upstream: 'svc' },
      { id: 'api.v1.files', methods: ['GET', 'PUT'], path: '/v1/files/*', upstream: 'svc' },
    ],
  })
  await waitFor(() => gateway.state.runtime.issuerKeys.get('corp')?.state === 'ready', 'keys')
})

afterAll(async () => {
  await gateway?.close()
  await upstream?.close()
  await idp?.stop()
})

const explain = (body: Record<string, unknown>): Promise<Explanation> => explainAt(gateway, ADMIN, body)

const anyClaim = <T>(...values: T[]) => fc.option(fc.constantFrom(...values), { nil: undefined })

const claimsArb = fc.record({
  sub: fc.constantFrom('svc-a', 'svc-', 'agent-1', 'agent-12', 'user', 'svc-*', 'Svc-a', 'svc-ä', 'agent-é'),
  groups: anyClaim<unknown>('readers', ['x', 'readers'], 'x readers', 1, null, { g: 'readers' }, [['readers']], []),
  tenant: anyClaim<unknown>('acme', ['acme'], 'ACME', 1, null, { t: 'acme' }, 'acme ', true),
  level: anyClaim<unknown>(1, '1', true, [1], 1.0, '01', null),
  org: anyClaim<unknown>({ unit: 'ops' }, { unit: ['ops'] }, 'ops', null),
  'org.unit': anyClaim<unknown>('ops', 'dev'),
  blocked: anyClaim<unknown>(true, 'true', false, ['true'], 'TRUE'),
  scope: anyClaim<unknown>('admin', 'read admin', ['admin'], 'x', ' admin', 'admin\tread'),
  act: anyClaim<unknown>({ sub: 'agent-1' }, { sub: 'agent-2', act: { sub: 'svc-a' } }, 'agent-1', ['agent-1'], { sub: 1 }, {}, null, { sub: 'svc-a', scope: 'admin' }, { sub: 'user' }),
}, { requiredKeys: ['sub'] })

const requestArb = fc.record({
  claims: claimsArb,
  method: fc.constantFrom('GET', 'HEAD', 'POST', 'DELETE', 'PUT', 'OPTIONS'),
  path: fc.constantFrom('//items/1', '/items/1%2F2', '/items/%2e%2e', '/items/1;x', '/ITEMS/1', '/items/%E2%82%AC', '/items/%ZZ', '/items/1?', '/items/1?_method=delete', '/items/1?_method=DELETE&_method=PUT', '/items/1?%5Fmethod=DELETE', '/items/1?_method=%44ELETE', '/items/1?_METHOD=DELETE', '/secret?_method=POST', '/items/1?x=1&access_token=a', '/items/a%00b', '/v1/files/%2e/a', '/items/1/?_method=DELETE', '/items/1/', '/items/a.b', '/items/%31', '/items/1?x=1', '/secret', '/secret/', '/Secret', '/v1/files/a/b', '/v1/files/', '/v1/files', '/items/1?_method=DELETE', '/secret?_method=GET'),
  ip: fc.constantFrom('127.0.0.1', '10.1.2.3', '10.9.1.1', '::ffff:10.9.1.1', '2001:db8::1', '192.168.1.1'),
})

describe('explain agrees with the gateway', () => {
  it('for generated claims, methods, paths and addresses', async () => {
    await fc.assert(fc.asyncProperty(requestArb, async ({ claims, method, path, ip }) => {
      const token = await idp.mint(Object.fromEntries(Object.entries(claims).filter(([, v]) => v !== undefined)))
      // Raw, as sent: a URL parser would resolve %2e%2e and // before the gateway sees them.
      const port = Number(new URL(gateway.url).port)
      const raw = await rawRequest(port, `${method} ${path} HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer ${token}\r\nX-Forwarded-For: ${ip}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n`)
      const res = { statusCode: raw.status }
      const text = Buffer.from(raw.body, 'latin1').toString('utf8')
      // A HEAD's refusal has no body: its status is compared alone.
      const body = res.statusCode === 200 || method === 'HEAD' ? {} : (JSON.parse(text) as { code?: string; detail?: string })
      const e = await explain({ method, path, token, ip })
      const real = { status: res.statusCode, code: res.statusCode === 200 || method === 'HEAD' ? null : (body.code ?? null) }
      if (method === 'HEAD') e.decision.code = null
      expect({ explained: { status: e.decision.status, code: e.decision.code } }, JSON.stringify({ claims, method, path, ip, real, detail: body.detail, reason: e.decision.reason })).toEqual({ explained: real })
      if (real.status !== 200 && method !== 'HEAD') expect(e.decision.reason.startsWith(`${real.status} ${real.code}: ${body.detail}`), `${e.decision.reason}\n vs ${body.detail}`).toBe(true)
    }), { numRuns: 600 })
  }, 120_000)
})
