// Found by an adversarial probe (helper): explain listed as held the roles the user's trust rules give, while the gateway decides a token it issued by token exchange with the roles that exchange granted, so explain showed roles the token does not hold.
import { request } from 'undici'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { formatExplanation, type Explanation } from '../../src/gateway/explain.ts'
import { exchanged as exchangedAt, ISSUER } from '../helpers/exchange.ts'
import { startTestGateway, type TestGateway } from '../helpers/gateway.ts'
import { AUDIENCE, startIdentityProvider, type TestIdentityProvider } from '../helpers/identity-provider.ts'
import { startUpstream, type TestUpstream } from '../helpers/upstream.ts'
import { waitFor } from '../helpers/wait.ts'

const ADMIN = 'explain-exchanged-roles-admin-token-01'
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
      { name: 'staff', assumed_by: [{ issuer: 'corp', subject: 'user-*' }], policies: ['read'] },
      { name: 'extra', assumed_by: [{ issuer: 'corp', subject: 'user-*' }], policies: ['read'] },
      { name: 'agent', assumed_by: [{ issuer: 'corp', subject: 'agent-*' }], policies: ['read'] },
    ],
    policies: [{ name: 'read', statements: [{ sid: 'Read', effect: 'allow', actions: ['GET'], routes: ['*'] }] }],
    upstreams: [{ name: 'svc', url: upstream.url }],
    routes: [{ id: 'svc', methods: ['GET'], path: '/svc', upstream: 'svc' }],
    token_exchange: { issuer: ISSUER, audiences: [ISSUER], lifetime: '5m', actors: [{ role: 'agent', delegated_roles: ['*'] }] },
  })
  await waitFor(() => gw.state.runtime.issuerKeys.get('corp')?.state === 'ready', 'keys')
})

afterAll(async () => {
  await gw?.close()
  await upstream?.close()
  await idp?.stop()
})

async function exchanged(scope: string): Promise<string> {
  return exchangedAt(gw.url, { subject: await idp.mint({ sub: 'user-1' }), actor: await idp.mint({ sub: 'agent-1' }), scope })
}

describe('explain on a token the gateway issued by token exchange', () => {
  it('lists as held exactly the roles the exchange granted, and the agent\'s own roles beside them', async () => {
    const res = await request(`${gw.adminUrl}/api/explain`, {
      method: 'POST',
      headers: { authorization: `Bearer ${ADMIN}`, 'content-type': 'application/json' },
      body: JSON.stringify({ method: 'GET', path: '/svc', token: await exchanged('staff') }),
    })
    expect(res.statusCode).toBe(200)
    const e = (await res.body.json()) as Explanation
    expect(e.decision).toMatchObject({ effect: 'allow', status: 200 })
    expect(e.roles.filter((r) => r.held).map((r) => r.role)).toEqual(['staff'])
    expect(e.roles.find((r) => r.role === 'staff')?.rules).toEqual([{ rule: 'token exchange', matched: true, why: null }])
    expect(e.roles.find((r) => r.role === 'extra')?.rules).toEqual([{ rule: 'token exchange', matched: false, why: 'the exchange did not grant it' }])
    expect(e.identity?.actor).toMatchObject({ sub: 'agent-1', issuer: 'corp', roles: ['agent'], roles_from: 'token_exchange' })
    const text = formatExplanation(e)
    expect(text).toContain('+ staff: granted by token exchange')
    expect(text).toContain('- extra: not held (token exchange: the exchange did not grant it)')
    expect(text).toMatch(/Agent +agent-1 \(issuer corp\) acting for the subject, with roles agent/)
  })
})
