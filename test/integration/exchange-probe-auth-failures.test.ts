// Found by an adversarial probe (helper): auth_failures did not reach the token endpoint. Forged
// subject and actor tokens sprayed at POST /oauth2/token were verified without being counted, and an
// address already held back on every route still had its guesses verified there (400 invalid_grant
// naming what was wrong with each). The endpoint's tokens now go through the same guard.
import { join } from 'node:path'
import { request } from 'undici'
import { afterAll, beforeAll, expect, it } from 'vitest'
import { waitForAuditRecord } from '../helpers/audit.ts'
import { exchange as exchangeAt } from '../helpers/exchange.ts'
import { signingKey } from '../helpers/identity-provider.ts'
import { AGENT_FOR_REPORTER, startMcpTestGateway, type McpTestSetup } from '../helpers/mcp.ts'

let setup: McpTestSetup

beforeAll(async () => {
  setup = await startMcpTestGateway('exchange-probe-auth-failures', (config) => ({
    ...config,
    token_exchange: { ...AGENT_FOR_REPORTER, audiences: [AGENT_FOR_REPORTER.issuer] },
    auth_failures: { rate: '1/h', burst: 2 },
  }))
}, 90_000)

afterAll(() => setup?.close())

async function exchange(subject: string, actor: string, requestId?: string) {
  const { status, body, headers } = await exchangeAt(setup.gateway.url, { subject, actor, requestId })
  return { status, body, retryAfter: headers['retry-after'] }
}

it('counts forged tokens sent to the token endpoint, and holds the address back there as on the routes', async () => {
  const { idp, gateway } = setup
  const user = await idp.token('looker-reports')
  const agent = await idp.token('analytics-agent')
  // Signed with a key the provider never had: a guess.
  const forged = await idp.mint({ sub: 'looker-reports', aud: 'api://bouncer', exp: Math.floor(Date.now() / 1000) + 600 }, { key: await signingKey('guess', 'ES256') })

  // The burst of two failures, then one more: each answered as before (the first failure past the
  // burst is the one that learns the budget is spent).
  for (const [subject, actor] of [[forged, agent], [user, forged], [forged, forged]] as const) {
    expect(await exchange(subject, actor)).toMatchObject({ status: 400, body: { error: 'invalid_grant' } })
  }
  // Spent: the address is held back on the routes (before: 200, the failures were never counted)…
  const route = await request(`${gateway.url}/sales/daily/eu`, { headers: { authorization: `Bearer ${user}` } })
  const routeBody = (await route.body.json()) as { code?: string }
  expect({ status: route.statusCode, code: routeBody.code }).toEqual({ status: 429, code: 'rate_limited' })
  // …and at the token endpoint, its tokens unread (before: a genuine pair was exchanged, a forged one verified).
  expect(await exchange(forged, agent)).toMatchObject({ status: 429, body: { code: 'rate_limited' }, retryAfter: expect.any(String) })
  const held = await exchange(user, agent, 'exchange-held-back')
  expect(held).toMatchObject({ status: 429, body: { code: 'rate_limited' } })
  expect(await waitForAuditRecord(join(setup.dir, 'audit.db'), 'exchange-held-back')).toMatchObject({ status: 429, code: 'rate_limited', limit: 'auth_failures', route: 'builtin/oauth-token' })
}, 60_000)
