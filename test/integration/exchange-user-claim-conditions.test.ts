// Found by an adversarial probe (helper): token exchange dropped the user's provider claims a statement condition reads (roles, scp, azp…) and put the granted role names in `roles` and `scope`, so a deny that refused the user let their agent through (200), and an allow on the provider's `roles` was met by a gateway role of that name.
import { decodeJwt } from 'jose'
import { request } from 'undici'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { exchange as exchangeAt, exchanged as exchangedAt, ISSUER } from '../helpers/exchange.ts'
import { startTestGateway, type TestGateway } from '../helpers/gateway.ts'
import { AUDIENCE, startIdentityProvider, type TestIdentityProvider } from '../helpers/identity-provider.ts'
import { startUpstream, type TestUpstream } from '../helpers/upstream.ts'
import { waitFor } from '../helpers/wait.ts'

const DENIED_ROUTES = ['by-role', 'by-scope', 'by-azp', 'by-tenant']
let idp: TestIdentityProvider
let upstream: TestUpstream
let gw: TestGateway

beforeAll(async () => {
  idp = await startIdentityProvider()
  upstream = await startUpstream()
  gw = await startTestGateway({
    issuers: [{ name: 'corp', issuer: idp.issuer, audiences: [AUDIENCE] }],
    roles: [
      { name: 'staff', assumed_by: [{ issuer: 'corp', subject: 'user-*' }], policies: ['staff'] },
      { name: 'agent', assumed_by: [{ issuer: 'corp', subject: 'agent-*' }], policies: ['agents'] },
    ],
    policies: [
      {
        name: 'staff',
        statements: [
          { sid: 'StaffRead', effect: 'allow', actions: ['GET'], routes: DENIED_ROUTES },
          // The identity provider's own role and scope claims (Entra ID / Keycloak `roles`, Okta / Entra `scp`).
          { sid: 'NoContractors', effect: 'deny', actions: ['*'], routes: ['by-role'], conditions: { claims: { roles: 'Contractor' } } },
          { sid: 'NoGuests', effect: 'deny', actions: ['*'], routes: ['by-scope'], conditions: { claims: { scp: 'guest' } } },
          { sid: 'NoKiosk', effect: 'deny', actions: ['*'], routes: ['by-azp'], conditions: { claims: { azp: 'kiosk' } } },
          { sid: 'ByTenant', effect: 'deny', actions: ['*'], routes: ['by-tenant'], conditions: { claims: { tenant: 'blocked' } } },
          // Only for users whose provider gives them its role "staff": not the gateway's role of that name.
          { sid: 'ProviderStaff', effect: 'allow', actions: ['GET'], routes: ['provider-staff'], conditions: { claims: { roles: 'staff' } } },
        ],
      },
      { name: 'agents', statements: [{ sid: 'AgentsRead', effect: 'allow', actions: ['GET'], routes: ['*'] }] },
    ],
    upstreams: [{ name: 'svc', url: upstream.url }],
    routes: [...DENIED_ROUTES, 'provider-staff'].map((id) => ({ id, methods: ['GET'], path: `/${id}`, upstream: 'svc' })),
    token_exchange: { issuer: ISSUER, audiences: [ISSUER], lifetime: '5m', actors: [{ role: 'agent', delegated_roles: ['*'] }] },
  })
  await waitFor(() => gw.state.runtime.issuerKeys.get('corp')?.state === 'ready', 'keys')
})

afterAll(async () => {
  await gw?.close()
  await upstream?.close()
  await idp?.stop()
})

/** `subject` exchanged with agent-1 acting. */
const exchange = async (subject: string) => exchangeAt(gw.url, { subject, actor: await idp.mint({ sub: 'agent-1' }) })
const exchanged = async (subject: string) => exchangedAt(gw.url, { subject, actor: await idp.mint({ sub: 'agent-1' }) })

async function status(path: string, token: string): Promise<number> {
  const res = await request(`${gw.url}${path}`, { headers: { authorization: `Bearer ${token}` } })
  await res.body.dump()
  return res.statusCode
}

const flagged = () => idp.mint({ sub: 'user-1', roles: ['Contractor'], scp: 'guest', azp: 'kiosk', tenant: 'blocked' })

describe('statement conditions on an exchanged token read the user\'s own claims', () => {
  it('a deny on the provider\'s roles, scp, azp or a carried claim refuses the agent as it refuses the user', async () => {
    const own = await flagged()
    const delegated = await exchanged(own)
    for (const route of DENIED_ROUTES) {
      expect(await status(`/${route}`, own), `the user's own token on /${route}`).toBe(403)
      expect(await status(`/${route}`, delegated), `the exchanged token on /${route}`).toBe(403)
    }
  })

  it('an allow on the provider\'s roles is not met by the gateway\'s role of the same name', async () => {
    const own = await idp.mint({ sub: 'user-2', roles: ['Employee'] })
    expect(await status('/provider-staff', own)).toBe(403)
    const delegated = await exchanged(own)
    expect(decodeJwt(delegated).roles).toEqual(['staff']) // what the exchange granted
    expect(await status('/provider-staff', delegated)).toBe(403)
    // A user whose provider does say "staff" is allowed, directly and through the agent.
    const staff = await idp.mint({ sub: 'user-3', roles: ['staff'] })
    expect(await status('/provider-staff', staff)).toBe(200)
    expect(await status('/provider-staff', await exchanged(staff))).toBe(200)
  })

  it('carries the claims the token states itself under idp_claims, the others beside its own', async () => {
    const claims = decodeJwt(await exchanged(await flagged()))
    expect(claims).toMatchObject({ roles: ['staff'], scope: 'staff', tenant: 'blocked', idp: idp.issuer })
    expect(claims.idp_claims).toMatchObject({ iss: idp.issuer, sub: 'user-1', roles: ['Contractor'], scp: 'guest', azp: 'kiosk' })
    expect(claims.idp_claims).not.toHaveProperty('tenant') // carried once
  })

  it('refuses to exchange claims that would nest too deep to be read back (invalid_grant)', async () => {
    let deep: unknown = 'x'
    for (let i = 0; i < 31; i++) deep = [deep] // 32 levels in the user's token (the most the gateway reads), 33 under idp_claims
    const own = await idp.mint({ sub: 'user-4', roles: deep })
    expect(await status('/by-tenant', own)).toBe(200)
    const answer = await exchange(own)
    expect(answer).toMatchObject({ status: 400, body: { error: 'invalid_grant' } })
    expect(answer.body.error_description).toContain('nest too deep')
  })
})
