// Found by an adversarial probe (helper): an exchanged token outlived the agent's own token. Its
// lifetime was bounded by the user's token's exp (and either token's introspection.cache), but not
// by the agent's: an agent whose token had 20 seconds left got a token acting for the user for the
// whole token_exchange.lifetime, going on for minutes after its identity provider stopped vouching
// for it.
import { decodeJwt } from 'jose'
import { afterAll, beforeAll, expect, it } from 'vitest'
import { exchange } from '../helpers/exchange.ts'
import { AUDIENCE } from '../helpers/identity-provider.ts'
import { AGENT_FOR_REPORTER, startMcpTestGateway, type McpTestSetup } from '../helpers/mcp.ts'

let setup: McpTestSetup

beforeAll(async () => {
  setup = await startMcpTestGateway('exc2-actor-lifetime', (config) => ({ ...config, token_exchange: { ...AGENT_FOR_REPORTER, lifetime: '15m' } }))
}, 90_000)

afterAll(() => setup?.close())

/** The agent's own token, as its provider would sign it, with `seconds` left. */
async function agentToken(seconds: number): Promise<{ token: string; exp: number }> {
  const now = Math.floor(Date.now() / 1000)
  const exp = now + seconds
  return { token: await setup.idp.mint({ iss: setup.idp.issuer, sub: 'analytics-agent', aud: AUDIENCE, iat: now, exp }), exp }
}

it('lives no longer than the agent\'s own token', async () => {
  const agent = await agentToken(20)
  const answer = await exchange(setup.gateway.url, { subject: await setup.idp.token('looker-reports'), actor: agent.token })
  expect(answer.status, JSON.stringify(answer.body)).toBe(200)
  // Before: 599, the user's token's time left (token_exchange.lifetime is 900 s).
  expect(answer.body.expires_in).toBeLessThanOrEqual(20)
  expect(decodeJwt(answer.body.access_token as string).exp).toBeLessThanOrEqual(agent.exp)
})

it('refuses an agent token already past its exp, though within its issuer\'s clock tolerance', async () => {
  const agent = await agentToken(-5)
  const answer = await exchange(setup.gateway.url, { subject: await setup.idp.token('looker-reports'), actor: agent.token })
  // Before: 200, a token for the user's 599 s left, for an agent whose own had expired.
  expect(answer).toMatchObject({ status: 400, body: { error: 'invalid_grant', error_description: 'actor_token: the token has expired.' } })
})
