// The access probe (helper) asked whether a deny on a claim the token withholds (`_claim_names`,
// Entra ID's groups past 200), which fails closed on the user's own token, does so on the token an
// agent exchanges it for, and on the agent's own withheld claims carried in `act`. It does: held here.
import { request } from 'undici'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { exchanged, ISSUER } from '../helpers/exchange.ts'
import { startTestGateway, type TestGateway } from '../helpers/gateway.ts'
import { AUDIENCE, startIdentityProvider, type TestIdentityProvider } from '../helpers/identity-provider.ts'
import { startUpstream, type TestUpstream } from '../helpers/upstream.ts'
import { waitFor } from '../helpers/wait.ts'

let idp: TestIdentityProvider
let upstream: TestUpstream
let gw: TestGateway

/** Entra's groups overage: no groups, a pointer to where they are. */
const OVERAGE = { _claim_names: { groups: 'src1' }, _claim_sources: { src1: { endpoint: 'https://graph.microsoft.com/v1.0/users/x/getMemberObjects' } } }
const ROLES_OVERAGE = { _claim_names: { roles: 'src1' }, _claim_sources: OVERAGE._claim_sources }

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
          { sid: 'StaffRead', effect: 'allow', actions: ['GET'], routes: ['*'] },
          { sid: 'NoContractors', effect: 'deny', actions: ['*'], routes: ['payroll'], conditions: { claims: { groups: 'contractors' } } },
          { sid: 'NoProviderGuests', effect: 'deny', actions: ['*'], routes: ['bonus'], conditions: { claims: { roles: 'Guest' } } },
        ],
      },
      {
        name: 'agents',
        statements: [
          { sid: 'AgentsRead', effect: 'allow', actions: ['GET'], routes: ['*'] },
          { sid: 'NoUntrustedAgents', effect: 'deny', actions: ['*'], routes: ['payroll'], conditions: { claims: { groups: 'untrusted-agents' } } },
        ],
      },
    ],
    upstreams: [{ name: 'svc', url: upstream.url }],
    routes: ['payroll', 'bonus'].map((id) => ({ id, methods: ['GET'], path: `/${id}`, upstream: 'svc' })),
    token_exchange: { issuer: ISSUER, audiences: [ISSUER], lifetime: '5m', actors: [{ role: 'agent', delegated_roles: ['*'] }] },
  })
  await waitFor(() => gw.state.runtime.issuerKeys.get('corp')?.state === 'ready', 'keys')
})

afterAll(async () => {
  await gw?.close()
  await upstream?.close()
  await idp?.stop()
})

async function status(path: string, token: string): Promise<number> {
  const res = await request(`${gw.url}${path}`, { headers: { authorization: `Bearer ${token}` } })
  await res.body.dump()
  return res.statusCode
}

describe('a deny on a withheld claim, through token exchange', () => {
  it('refuses the agent acting for a user whose groups are withheld, as it refuses the user', async () => {
    const own = await idp.mint({ sub: 'user-1', ...OVERAGE })
    expect(await status('/payroll', own)).toBe(403)
    const delegated = await exchanged(gw.url, { subject: own, actor: await idp.mint({ sub: 'agent-1' }) })
    expect(await status('/payroll', delegated)).toBe(403)
  })

  it('refuses on a withheld claim the exchanged token states itself (roles)', async () => {
    const own = await idp.mint({ sub: 'user-2', ...ROLES_OVERAGE })
    expect(await status('/bonus', own)).toBe(403)
    const delegated = await exchanged(gw.url, { subject: own, actor: await idp.mint({ sub: 'agent-1' }) })
    expect(await status('/bonus', delegated)).toBe(403)
  })

  it('refuses an agent whose own groups are withheld, acting for a user', async () => {
    const agent = await idp.mint({ sub: 'agent-2', ...OVERAGE })
    expect(await status('/payroll', agent)).toBe(403)
    const delegated = await exchanged(gw.url, { subject: await idp.mint({ sub: 'user-3' }), actor: agent })
    expect(await status('/payroll', delegated)).toBe(403)
  })
})
