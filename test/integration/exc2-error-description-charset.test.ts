// Found by an adversarial probe (helper): the token endpoint's error_description held characters
// RFC 6749 §5.2 forbids in it ("MUST NOT include characters outside the set %x20-21 / %x23-5B /
// %x5D-7E"): the double quotes around a role or type it named, the § of the RFCs it cited, the …
// of a truncated value, and a client's own non-ASCII or backslash. The WWW-Authenticate header's
// error_description (RFC 6750, the same set) was already held to it; the JSON answer was not.
import { afterAll, beforeAll, expect, it } from 'vitest'
import { exchange, postTokenRequest, tokenForm } from '../helpers/exchange.ts'
import { AGENT_FOR_REPORTER, startMcpTestGateway, type McpTestSetup } from '../helpers/mcp.ts'

/** RFC 6749 §5.2's set for error_description. */
const OAUTH_TEXT = /^[\x20\x21\x23-\x5b\x5d-\x7e]*$/

let setup: McpTestSetup
let user: string
let agent: string

beforeAll(async () => {
  setup = await startMcpTestGateway('exc2-error-description-charset', (config) => ({ ...config, token_exchange: AGENT_FOR_REPORTER }))
  ;[user, agent] = await Promise.all([setup.idp.token('looker-reports'), setup.idp.token('analytics-agent')])
}, 90_000)

afterAll(() => setup?.close())

it('says each refusal in the characters RFC 6749 §5.2 allows, the client\'s own values included', async () => {
  const answers = await Promise.all([
    exchange(setup.gateway.url, { subject: user, actor: agent, scope: 'réporter\\"x' }),
    exchange(setup.gateway.url, { subject: user, actor: agent, params: { requested_token_type: `urn:ünknown:${'t'.repeat(100)}` } }),
    postTokenRequest(setup.gateway.url, `${tokenForm({ subject: user, actor: agent })}&scope=reporter&scope=reporter`),
  ])
  for (const answer of answers) {
    expect(answer.status).toBe(400)
    // Before: Role "réporter\"x" …, requested_token_type "urn:ünknown:ttt…(truncated, 112 chars)" …, (RFC 6749 §3.1).
    expect(answer.body.error_description).toMatch(OAUTH_TEXT)
  }
  expect(answers[0]?.body).toMatchObject({ error: 'invalid_scope', error_description: 'Role \'r?porter\'\'x\' is not one the user holds (reporter).' })
  expect(answers[2]?.body).toMatchObject({ error: 'invalid_request', error_description: 'scope is given more than once (RFC 6749 section 3.1).' })
})
