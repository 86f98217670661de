// Found by the access probe (helper): a call made with an exchanged token decided the agent's side on
// the token's `act` alone ({sub, iss, client_id, roles}), so a statement of the agent's own roles with
// a condition on the agent's claims (its scope, its tier…) did not see them: a deny that refused the
// agent calling for itself let it through when it called for a user (200 where the user and the agent
// each were refused nothing else), and an allow on them refused it.
import { decodeJwt } from 'jose'
import { request } from 'undici'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { Explanation } from '../../src/gateway/explain.ts'
import { exchange as exchangeAt, exchanged as exchangedAt, ISSUER } from '../helpers/exchange.ts'
import { explainAt, startTestGateway, type TestGateway } from '../helpers/gateway.ts'
import { AUDIENCE, startIdentityProvider, type TestIdentityProvider } from '../helpers/identity-provider.ts'
import { startUpstream, type TestUpstream } from '../helpers/upstream.ts'
import { waitFor } from '../helpers/wait.ts'

const ADMIN = 'access-probe-agent-claims-admin-0123'
let idp: TestIdentityProvider
let upstream: TestUpstream
let gw: TestGateway

beforeAll(async () => {
  idp = await startIdentityProvider()
  upstream = await startUpstream()
  gw = await startTestGateway({
    admin: { token: ADMIN },
    issuers: [{ name: 'corp', issuer: idp.issuer, audiences: [AUDIENCE] }],
    roles: [
      { name: 'staff', assumed_by: [{ issuer: 'corp', subject: 'user-*' }], policies: ['staff'] },
      { name: 'agent', assumed_by: [{ issuer: 'corp', subject: 'agent-*' }], policies: ['agents'] },
    ],
    policies: [
      { name: 'staff', statements: [{ sid: 'StaffAll', effect: 'allow', actions: ['GET'], routes: ['*'] }] },
      {
        name: 'agents',
        statements: [
          { sid: 'AgentsRead', effect: 'allow', actions: ['GET'], routes: ['reports', 'payroll'] },
          // The agent's own token says how far it is trusted: an untrusted agent never reads payroll.
          { sid: 'NoUntrustedPayroll', effect: 'deny', actions: ['*'], routes: ['payroll'], conditions: { claims: { tier: 'untrusted' } } },
          // Exports only for an agent whose provider gave it the scope.
          { sid: 'ExportScope', effect: 'allow', actions: ['GET'], routes: ['export'], conditions: { claims: { scope: 'reports:export' } } },
        ],
      },
    ],
    upstreams: [{ name: 'svc', url: upstream.url }],
    routes: ['reports', 'payroll', 'export'].map((id) => ({ id, methods: ['GET'], path: `/${id}`, upstream: 'svc' })),
    token_exchange: { issuer: ISSUER, audiences: [ISSUER], lifetime: '5m', actors: [{ role: 'agent', delegated_roles: ['*'] }] },
  })
  await waitFor(() => gw.state.runtime.issuerKeys.get('corp')?.state === 'ready', 'keys')
})

afterAll(async () => {
  await gw?.close()
  await upstream?.close()
  await idp?.stop()
})

/** user-1's token, with agent-1's acting, its own claims `agentClaims`. */
const tokens = async (agentClaims: Record<string, unknown>) => ({ subject: await idp.mint({ sub: 'user-1' }), actor: await idp.mint({ sub: 'agent-1', ...agentClaims }) })
const exchange = async (agentClaims: Record<string, unknown>) => exchangeAt(gw.url, await tokens(agentClaims))
const exchanged = async (agentClaims: Record<string, unknown>) => exchangedAt(gw.url, await tokens(agentClaims))

async function call(path: string, token: string): Promise<{ status: number; code?: string; detail?: string }> {
  const res = await request(`${gw.url}${path}`, { headers: { authorization: `Bearer ${token}` } })
  const text = await res.body.text()
  return { status: res.statusCode, ...(res.statusCode === 200 ? {} : (JSON.parse(text) as { code: string; detail: string })) }
}

const explain = (token: string, path: string): Promise<Explanation> => explainAt(gw, ADMIN, { method: 'GET', path, token })

describe('the agent\'s side of an exchanged token\'s call reads the agent\'s own claims', () => {
  it('a deny on the agent\'s claim refuses it calling for a user, as it refuses it calling for itself', async () => {
    const agentOwn = await idp.mint({ sub: 'agent-1', tier: 'untrusted' })
    expect((await call('/payroll', agentOwn)).status).toBe(403)

    const token = await exchanged({ tier: 'untrusted' })
    const denied = await call('/payroll', token)
    expect(denied).toMatchObject({ status: 403, code: 'policy_denied' })
    expect(denied.detail).toBe('Agent "agent-1" acting for "user-1" is denied by the agent\'s roles: Statement "NoUntrustedPayroll" of policy "agents" denies GET on route "payroll".')
    expect((await call('/reports', token)).status).toBe(200)
    // explain, given the same token, says the same.
    expect((await explain(token, '/payroll')).decision).toMatchObject({ status: 403, code: 'policy_denied', statement: 'NoUntrustedPayroll' })
  })

  it('an allow on the agent\'s claim lets it call for a user, and the user\'s claims stay the user\'s', async () => {
    const token = await exchanged({ scope: 'openid reports:export', tier: 'trusted' })
    expect((await call('/export', token)).status).toBe(200)
    expect((await call('/payroll', token)).status).toBe(200)
    // The agent's claims are the agent's side only: the token's own top level is still the user's.
    const claims = decodeJwt(token)
    expect(claims.tier).toBeUndefined()
    expect(claims.sub).toBe('user-1')
    expect((claims.act as Record<string, unknown>).roles).toEqual(['agent'])

    const without = await exchanged({})
    expect((await call('/export', without)).status).toBe(403)
  })

  it('an agent\'s claim named roles is its provider\'s, not the role names the gateway holds for it', async () => {
    // A provider role claim spelled like the gateway's role grants nothing: the agent's roles are act.roles.
    const token = await exchanged({ roles: ['admin'], tier: 'untrusted' })
    expect((decodeJwt(token).act as Record<string, unknown>).roles).toEqual(['agent'])
    expect((await call('/payroll', token)).status).toBe(403)
  })

  it('a refusal for the exchanged token\'s length or depth names the agent\'s token too, now that its claims are carried', async () => {
    // 32 levels in the agent's token, as many as the verifier reads: carried in act, one deeper.
    let deep: unknown = 'x'
    for (let i = 0; i < 31; i++) deep = { d: deep }
    const tooDeep = await exchange({ deep })
    expect(tooDeep.status).toBe(400)
    expect(tooDeep.body).toMatchObject({ error: 'invalid_grant', error_description: expect.stringMatching(/^subject_token and actor_token: their claims nest too deep/) })
    // An agent token just within server.max_token_bytes, whose claims with the user's and the gateway's are not.
    const tooLong = await exchange({ notes: 'n'.repeat(5_650) })
    expect(tooLong.body).toMatchObject({ error: 'invalid_grant', error_description: expect.stringMatching(/^subject_token and actor_token: their claims make the exchanged token \d+ bytes long/) })
  })
})
