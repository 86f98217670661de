// Probe: a reload that takes delegation away — the agent's trust rule, its token_exchange.actors
// entry, or a role from its delegated_roles — as an operator does for a misbehaving agent. The
// agent's own token loses the role at once; does a token it exchanged before?
import { request } from 'undici'
import { afterAll, beforeAll, beforeEach, expect, it } from 'vitest'
import { explain, formatExplanation } from '../../src/gateway/index.ts'
import { exchanged, ISSUER } from '../helpers/exchange.ts'
import { startTestGateway, type TestGateway } from '../helpers/gateway.ts'
import { AUDIENCE, startIdentityProvider, type TestIdentityProvider } from '../helpers/identity-provider.ts'
import { startUpstream, type TestUpstream } from '../helpers/upstream.ts'
import { waitFor } from '../helpers/wait.ts'

let idp: TestIdentityProvider
let upstream: TestUpstream
let gw: TestGateway

interface Knobs { agentSubject?: string; actors?: object[]; userSubject?: string }

function config({ agentSubject = 'agent-*', actors = [{ role: 'agent', delegated_roles: ['analyst', 'admin'] }], userSubject = 'user-*' }: Knobs = {}) {
  return {
    issuers: [{ name: 'corp', issuer: idp.issuer, audiences: [AUDIENCE] }],
    roles: [
      // On claims the exchanged token restates (azp, under idp_claims) and carries (tenant): read again as the user's own.
      { name: 'analyst', assumed_by: [{ issuer: 'corp', subject: userSubject, claims: { azp: 'portal', tenant: 'acme' } }], policies: ['read'] },
      { name: 'admin', assumed_by: [{ issuer: 'corp', subject: userSubject }], policies: ['admin'] },
      { name: 'agent', assumed_by: [{ issuer: 'corp', subject: agentSubject }], policies: ['read', 'admin'] },
    ],
    policies: [
      { name: 'read', statements: [{ sid: 'Read', effect: 'allow', actions: ['GET'], routes: ['reports'] }] },
      { name: 'admin', statements: [{ sid: 'Admin', effect: 'allow', actions: ['GET'], routes: ['admin'] }] },
    ],
    upstreams: [{ name: 'svc', url: upstream.url }],
    routes: [{ id: 'reports', methods: ['GET'], path: '/reports', upstream: 'svc' }, { id: 'admin', methods: ['GET'], path: '/admin', upstream: 'svc' }],
    token_exchange: { issuer: ISSUER, audiences: [ISSUER], lifetime: '5m', actors },
  }
}

beforeAll(async () => {
  idp = await startIdentityProvider()
  upstream = await startUpstream()
  gw = await startTestGateway(config())
  await waitFor(() => gw.state.runtime.issuerKeys.get('corp')?.state === 'ready', 'keys')
})

afterAll(async () => {
  await gw?.close()
  await upstream?.close()
  await idp?.stop()
})

beforeEach(async () => reloadTo({}))

async function reloadTo(knobs: Knobs): Promise<void> {
  await gw.writeConfig(config(knobs))
  expect((await gw.reload()).ok).toBe(true)
}

async function answer(path: string, token: string): Promise<{ status: number; body: Record<string, unknown> }> {
  const res = await request(`${gw.url}${path}`, { headers: { authorization: `Bearer ${token}` } })
  const text = await res.body.text()
  return { status: res.statusCode, body: text.startsWith('{') ? (JSON.parse(text) as Record<string, unknown>) : {} }
}

const status = async (path: string, token: string) => (await answer(path, token)).status
const NO_LONGER = 'none of the roles the token exchange granted (analyst, admin) is still given by the config: the user\'s trust rules, or the agent\'s roles and token_exchange.actors, no longer grant them.'

const delegated = async () => exchanged(gw.url, { subject: await idp.mint({ sub: 'user-1', azp: 'portal', tenant: 'acme' }), actor: await idp.mint({ sub: 'agent-1' }) })

it('a reload that takes the agent\'s role away refuses the tokens it exchanged', async () => {
  const token = await delegated()
  expect(await status('/reports', token)).toBe(200)
  await reloadTo({ agentSubject: 'robot-*' })
  expect(await status('/reports', await idp.mint({ sub: 'agent-1' }))).toBe(403)
  expect(await status('/reports', token)).toBe(403)
})

it('a reload that removes the agent\'s actors entry refuses the tokens it exchanged', async () => {
  const token = await delegated()
  expect(await status('/reports', token)).toBe(200)
  await reloadTo({ actors: [] })
  expect(await answer('/reports', token)).toMatchObject({ status: 403, body: { code: 'no_role', detail: `"user-1", for whom agent "agent-1" acts, is denied by the user's roles: ${NO_LONGER}` } })
})

it('a reload that narrows delegated_roles takes the role away from the tokens exchanged', async () => {
  const token = await delegated()
  expect(await status('/admin', token)).toBe(200)
  await reloadTo({ actors: [{ role: 'agent', delegated_roles: ['analyst'] }] })
  expect(await status('/admin', token)).toBe(403)
  expect(await status('/reports', token)).toBe(200)
  // bouncer explain says the same, and why.
  const explained = explain(gw.state.runtime, { method: 'GET', path: '/admin', token })
  expect(explained.decision.effect).toBe('deny')
  expect(explained.roles.find((r) => r.role === 'admin')).toMatchObject({ held: false, rules: [{ matched: false, why: 'granted by the exchange, but no longer given by the config (the user\'s trust rules, or the agent\'s roles and token_exchange.actors)' }] })
  expect(explained.roles.find((r) => r.role === 'analyst')).toMatchObject({ held: true })
  expect(formatExplanation(explained)).toContain('agent-1 (issuer corp) acting for the subject, with roles agent (held at the exchange, act.roles, as far as the config still gives them)')
})

it('a reload that takes the user\'s role away refuses the tokens exchanged for them, with an agent or without', async () => {
  const token = await delegated()
  expect(await status('/reports', token)).toBe(200)
  await gw.writeConfig({ ...config(), token_exchange: { ...config().token_exchange, require_actor: false } })
  expect((await gw.reload()).ok).toBe(true)
  const own = await exchanged(gw.url, { subject: await idp.mint({ sub: 'user-1', azp: 'portal', tenant: 'acme' }), scope: 'analyst' }) // a user narrowing their own token
  expect(await status('/reports', own)).toBe(200)
  await reloadTo({ userSubject: 'person-*' })
  expect(await status('/reports', await idp.mint({ sub: 'user-1', azp: 'portal', tenant: 'acme' }))).toBe(403)
  expect(await status('/reports', token)).toBe(403)
  await gw.writeConfig({ ...config({ userSubject: 'person-*' }), token_exchange: { ...config().token_exchange, require_actor: false } })
  expect((await gw.reload()).ok).toBe(true)
  expect(await answer('/reports', own)).toMatchObject({ status: 403, body: { code: 'no_role', detail: '"user-1": none of the roles the token exchange granted (analyst) is still given by the config: the user\'s trust rules, or the agent\'s roles and token_exchange.actors, no longer grant them.' } })
})
