// Found by the access probe (helper): explain (POST /api/explain, `bouncer explain`) of a request made
// for a user by an agent (an `act` claim) listed only the user's statements: a request the agent's
// own roles denied came out as "DENY … Statement "AgentsNoPayroll" … denies" beneath a list in which
// that statement, and every other of the agent's roles, did not appear — explain --tool lists both.
import { request } from 'undici'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { Explanation } from '../../src/gateway/explain.ts'
import { formatExplanation } from '../../src/gateway/explain.ts'
import { explainAt, startTestGateway, type TestGateway } from '../helpers/gateway.ts'
import { AUDIENCE, startIdentityProvider, type TestIdentityProvider } from '../helpers/identity-provider.ts'
import { startUpstream, type TestUpstream } from '../helpers/upstream.ts'
import { waitFor } from '../helpers/wait.ts'

const ADMIN = 'access-probe-agent-statements-admin-1'
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
      { name: 'agents', assumed_by: [{ issuer: 'corp', subject: 'agent-*' }], policies: ['agents'] },
    ],
    policies: [
      { name: 'staff', statements: [{ sid: 'StaffRead', effect: 'allow', actions: ['GET'], routes: ['*'] }] },
      { name: 'agents', statements: [
        { sid: 'AgentsRead', effect: 'allow', actions: ['GET'], routes: ['*'] },
        { sid: 'AgentsNoPayroll', effect: 'deny', actions: ['*'], routes: ['payroll'] },
        { sid: 'AgentsTrusted', effect: 'allow', actions: ['GET'], routes: ['payroll'], conditions: { claims: { tier: 'trusted' } } },
      ] },
    ],
    upstreams: [{ name: 'svc', url: upstream.url }],
    routes: ['reports', 'payroll'].map((id) => ({ id, methods: ['GET'], path: `/${id}`, upstream: 'svc' })),
  })
  await waitFor(() => gw.state.runtime.issuerKeys.get('corp')?.state === 'ready', 'keys')
})

afterAll(async () => {
  await gw?.close()
  await upstream?.close()
  await idp?.stop()
})

const explain = (path: string, token: string): Promise<Explanation> => explainAt(gw, ADMIN, { method: 'GET', path, token })

describe('explain of a request an agent makes for a user', () => {
  it('lists the agent\'s statements beside the user\'s, with the one that denied', async () => {
    const token = await idp.mint({ sub: 'user-1', act: { sub: 'agent-1' } })
    const real = await request(`${gw.url}/payroll`, { headers: { authorization: `Bearer ${token}` } })
    const body = (await real.body.json()) as { code: string; detail: string }
    expect(real.statusCode).toBe(403)
    const e = await explain('/payroll', token)
    expect(e.decision).toMatchObject({ status: 403, code: 'policy_denied', statement: 'AgentsNoPayroll' })
    expect(e.decision.reason).toContain(body.detail)
    expect(e.statements.map((s) => [s.sid, s.roles, s.matched, s.agent ?? false])).toEqual([
      ['StaffRead', ['staff'], true, false],
      ['AgentsRead', ['agents'], true, true],
      ['AgentsNoPayroll', ['agents'], true, true],
      ['AgentsTrusted', ['agents'], false, true],
    ])
    expect(e.statements.find((s) => s.sid === 'AgentsTrusted')?.why).toBe('claim tier is missing (wanted "trusted")')
    const text = formatExplanation(e)
    expect(text).toMatch(/\+ deny {2}AgentsNoPayroll \(policy agents, the agent's role agents\): matches/)
  })

  it('lists the user\'s alone when the user\'s roles decided, and a caller acting for itself as before', async () => {
    const own = await explain('/reports', await idp.mint({ sub: 'user-1' }))
    expect(own.statements.map((s) => s.sid)).toEqual(['StaffRead'])
    // The agent's side is decided only once the user's allows: a user with no role is refused first.
    const forNobody = await explain('/reports', await idp.mint({ sub: 'nobody', act: { sub: 'agent-1' } }))
    expect(forNobody.decision).toMatchObject({ code: 'no_role' })
    const allowed = await explain('/reports', await idp.mint({ sub: 'user-1', act: { sub: 'agent-1' } }))
    expect(allowed.decision).toMatchObject({ effect: 'allow', statement: 'StaffRead' })
    expect(allowed.statements.map((s) => [s.sid, s.agent ?? false])).toEqual([['StaffRead', false], ['AgentsRead', true]])
  })
})
