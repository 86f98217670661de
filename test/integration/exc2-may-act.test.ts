// Found by an adversarial probe (helper): a user's token naming the one party that may act for its
// user (`may_act`, RFC 8693 §4.4) was exchanged for any agent the actors config allowed — the
// identity provider's restriction of who may act for the user was read as one more claim, and
// another agent got a token acting for that user (200).
import { decodeJwt } from 'jose'
import { afterAll, beforeAll, expect, it } from 'vitest'
import { exchange } from '../helpers/exchange.ts'
import { AUDIENCE } from '../helpers/identity-provider.ts'
import { AGENT_FOR_REPORTER, startMcpTestGateway, type McpTestSetup } from '../helpers/mcp.ts'

let setup: McpTestSetup
let agent: string

beforeAll(async () => {
  setup = await startMcpTestGateway('exc2-may-act', (config) => ({ ...config, token_exchange: AGENT_FOR_REPORTER }))
  agent = await setup.idp.token('analytics-agent')
}, 90_000)

afterAll(() => setup?.close())

/** The user's token, as its provider would sign it, with `claims` beside the usual ones. */
async function userToken(claims: Record<string, unknown>): Promise<string> {
  const now = Math.floor(Date.now() / 1000)
  return setup.idp.mint({ iss: setup.idp.issuer, sub: 'looker-reports', aud: AUDIENCE, iat: now, exp: now + 300, ...claims })
}

it('exchanges a user\'s token for the agent its may_act names (its issuer the token\'s own, or stated)', async () => {
  for (const mayAct of [{ sub: 'analytics-agent' }, { sub: 'analytics-agent', iss: setup.idp.issuer }]) {
    const answer = await exchange(setup.gateway.url, { subject: await userToken({ may_act: mayAct }), actor: agent })
    expect(answer.status, JSON.stringify(answer.body)).toBe(200)
    expect(decodeJwt(answer.body.access_token as string).act).toMatchObject({ sub: 'analytics-agent' })
  }
})

it('refuses another agent than the one may_act names, or an agent of another issuer (invalid_grant)', async () => {
  // Before: 200 both times.
  expect(await exchange(setup.gateway.url, { subject: await userToken({ may_act: { sub: 'billing-agent' } }), actor: agent })).toMatchObject({
    status: 400,
    body: { error: 'invalid_grant', error_description: `subject_token: its may_act claim (RFC 8693 section 4.4) lets billing-agent of ${setup.idp.issuer} act for its user, not analytics-agent of ${setup.idp.issuer}.` },
  })
  expect(await exchange(setup.gateway.url, { subject: await userToken({ may_act: { sub: 'analytics-agent', iss: 'https://elsewhere.example' } }), actor: agent })).toMatchObject({
    status: 400,
    body: { error: 'invalid_grant', error_description: `subject_token: its may_act claim (RFC 8693 section 4.4) lets analytics-agent of https://elsewhere.example act for its user, not analytics-agent of ${setup.idp.issuer}.` },
  })
})

it('refuses every agent for a may_act that names none', async () => {
  for (const mayAct of ['analytics-agent', { iss: setup.idp.issuer }]) {
    expect(await exchange(setup.gateway.url, { subject: await userToken({ may_act: mayAct }), actor: agent })).toMatchObject({
      status: 400,
      body: { error: 'invalid_grant', error_description: 'subject_token: its may_act claim (RFC 8693 section 4.4) names no party by sub, so no agent may act for its user.' },
    })
  }
})
