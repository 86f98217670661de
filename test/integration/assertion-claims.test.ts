// X-Bouncer-Assertion speaks for the request it is attached to, and for no other: every claim it
// states about the caller (sub, client_id, idp, roles, aud) comes from this request's verified
// token and route, even when another caller's assertion for the same upstream is still cached.
// Each case sends two tokens that differ in one stated field only, A then B then A again, through
// a real gateway to a real upstream that verifies and decodes the assertion it receives.
import { request } from 'undici'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { assertionVerifier, type Caller } from '../../examples/assertion/verify-upstream.ts'
import { startTestGateway, type TestGateway } from '../helpers/gateway.ts'
import { startIdentityProvider, type TestIdentityProvider } from '../helpers/identity-provider.ts'
import { startUpstream, type TestUpstream } from '../helpers/upstream.ts'
import { waitFor } from '../helpers/wait.ts'

let corp: TestIdentityProvider
let partner: TestIdentityProvider
let upstream: TestUpstream
let gw: TestGateway
/** One verifier per upstream name (the assertion's audience), keyed by the path prefix routed to it. */
let verifiers: Record<string, (assertion: string | undefined) => Promise<Caller>>

beforeAll(async () => {
  corp = await startIdentityProvider()
  partner = await startIdentityProvider()
  upstream = await startUpstream(async (req, res) => {
    try {
      const prefix = (req.url ?? '').split('/')[1] as string
      const caller = await (verifiers[prefix] as (assertion: string | undefined) => Promise<Caller>)(req.headers['x-bouncer-assertion'] as string | undefined)
      res.writeHead(200, { 'content-type': 'application/json' })
      res.end(JSON.stringify(caller))
    } catch (err) {
      res.writeHead(401, { 'content-type': 'application/json' })
      res.end(JSON.stringify({ error: (err as Error).message }))
    }
  })
  gw = await startTestGateway({
    assertion: { issuer: 'bouncer-test' },
    issuers: [
      { name: 'corp', issuer: corp.issuer, audiences: ['api://bouncer'] },
      { name: 'partner', issuer: partner.issuer, audiences: ['api://bouncer'] },
    ],
    roles: [
      { name: 'analyst', assumed_by: [{ issuer: 'corp', claims: { team: 'analytics' } }, { issuer: 'partner', claims: { team: 'analytics' } }], policies: ['read'] },
      { name: 'finance', assumed_by: [{ issuer: 'corp', claims: { team: 'finance' } }], policies: ['read'] },
    ],
    policies: [{ name: 'read', statements: [{ sid: 'Read', effect: 'allow', actions: ['GET'], routes: ['*'] }] }],
    upstreams: [
      { name: 'sales-api', url: upstream.url, identity_assertion: true },
      { name: 'billing-api', url: upstream.url, identity_assertion: true },
    ],
    routes: [
      { id: 'sales', path: '/sales/*', upstream: 'sales-api' },
      { id: 'billing', path: '/billing/*', upstream: 'billing-api' },
    ],
  })
  verifiers = {
    sales: assertionVerifier(gw.url, 'sales-api', { issuer: 'bouncer-test', cooldownMs: 0 }),
    billing: assertionVerifier(gw.url, 'billing-api', { issuer: 'bouncer-test', cooldownMs: 0 }),
  }
  await waitFor(() => ['corp', 'partner'].every((name) => gw.state.runtime.issuerKeys.get(name)?.state === 'ready'), 'both key sets')
})

afterAll(async () => {
  await gw?.close()
  await upstream?.close()
  await corp?.stop()
  await partner?.stop()
})

/** What the assertion said, as the upstream verified and decoded it. */
async function assertedFor(token: string, path = '/sales/orders'): Promise<Caller> {
  const res = await request(`${gw.url}${path}`, { headers: { authorization: `Bearer ${token}` } })
  const body = (await res.body.json()) as Caller & { error?: string }
  expect(res.statusCode, body.error).toBe(200)
  return body
}

interface Caller1 {
  /** Who mints the token. */
  idp: () => TestIdentityProvider
  claims: Record<string, unknown>
  path?: string
  /** What the assertion must state for this caller. */
  expected: () => { sub: string; client_id?: string; idp: string; roles: string[]; aud: string }
}

const base = { sub: 'svc-reports', azp: 'looker', team: 'analytics' }
const stated = (overrides: Partial<ReturnType<Caller1['expected']>> = {}) => () => ({
  sub: 'svc-reports', client_id: 'looker', idp: corp.issuer, roles: ['analyst'], aud: 'sales-api', ...overrides,
})

const cases: Array<{ field: string; a: Caller1; b: Caller1 }> = [
  {
    field: 'sub',
    a: { idp: () => corp, claims: base, expected: stated() },
    b: { idp: () => corp, claims: { ...base, sub: 'svc-other' }, expected: stated({ sub: 'svc-other' }) },
  },
  {
    field: 'client_id (from azp)',
    a: { idp: () => corp, claims: base, expected: stated() },
    b: { idp: () => corp, claims: { ...base, azp: 'tableau' }, expected: stated({ client_id: 'tableau' }) },
  },
  {
    field: 'client_id (from client_id)',
    a: { idp: () => corp, claims: { sub: 'svc-reports', client_id: 'looker', team: 'analytics' }, expected: stated() },
    b: { idp: () => corp, claims: { sub: 'svc-reports', client_id: 'tableau', team: 'analytics' }, expected: stated({ client_id: 'tableau' }) },
  },
  {
    field: 'client_id (present, then absent)',
    a: { idp: () => corp, claims: base, expected: stated() },
    b: { idp: () => corp, claims: { sub: 'svc-reports', team: 'analytics' }, expected: stated({ client_id: undefined }) },
  },
  {
    field: 'idp (another issuer, same sub and client)',
    a: { idp: () => corp, claims: base, expected: stated() },
    b: { idp: () => partner, claims: base, expected: () => ({ ...stated()(), idp: partner.issuer }) },
  },
  {
    field: 'roles',
    a: { idp: () => corp, claims: base, expected: stated() },
    b: { idp: () => corp, claims: { ...base, team: 'finance' }, expected: stated({ roles: ['finance'] }) },
  },
  {
    field: 'aud (another upstream, same token)',
    a: { idp: () => corp, claims: base, expected: stated() },
    b: { idp: () => corp, claims: base, path: '/billing/invoices', expected: stated({ aud: 'billing-api' }) },
  },
]

function expectStated(caller: Caller, expected: ReturnType<Caller1['expected']>): void {
  const { client_id: clientId, ...rest } = expected
  expect(caller).toMatchObject({ ...rest, iss: 'bouncer-test' })
  if (clientId === undefined) expect(caller).not.toHaveProperty('client_id')
  else expect(caller.client_id).toBe(clientId)
}

describe('X-Bouncer-Assertion states what this request proved', () => {
  it.each(cases)('two callers that differ only in $field each get their own', async ({ a, b }) => {
    const tokenA = await a.idp().mint(a.claims)
    const tokenB = await b.idp().mint(b.claims)
    const first = await assertedFor(tokenA, a.path)
    expectStated(first, a.expected())
    expectStated(await assertedFor(tokenB, b.path), b.expected()) // A's assertion is cached, fresh for minutes
    const again = await assertedFor(tokenA, a.path)
    expectStated(again, a.expected())
    expect(again.jti).toBe(first.jti) // A's own is still served from the cache
  })

  it('the same caller gets the cached assertion, so the cache still saves the signing', async () => {
    const token = await corp.mint(base)
    const other = await corp.mint(base) // another token, the same caller
    expect((await assertedFor(other)).jti).toBe((await assertedFor(token)).jti)
  })
})
