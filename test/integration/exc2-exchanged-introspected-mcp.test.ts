// The check that an exchanged token's user and agent still come from a configured issuer
// (exc2-issuer-removed) counts every configured issuer, its keys held or not: the MCP endpoint's
// verifier holds no keys for an introspecting issuer without jwks_uri, and has no introspector, so a
// check that asked for the issuers with keys refused a token exchanged for such a user there (401
// issuer_unknown, "no configured issuer has any longer"), its issuer still configured.
import { afterAll, beforeAll, expect, it } from 'vitest'
import { exchanged } from '../helpers/exchange.ts'
import { answerJson, startIntrospectionEndpoint, type TestIntrospectionEndpoint } from '../helpers/introspection-endpoint.ts'
import { AGENT_FOR_REPORTER, connect, MCP_RESOURCE, startMcpTestGateway, type McpTestSetup } from '../helpers/mcp.ts'

const LEGACY = 'https://legacy.test'
const LEGACY_AUD = 'api://legacy'

let endpoint: TestIntrospectionEndpoint
let setup: McpTestSetup

beforeAll(async () => {
  endpoint = await startIntrospectionEndpoint()
  endpoint.answers.set('opaque-reporter', answerJson({ active: true, sub: 'looker-legacy', aud: LEGACY_AUD, exp: Math.floor(Date.now() / 1000) + 600 }))
  setup = await startMcpTestGateway('exc2-exchanged-introspected-mcp', (config) => ({
    ...config,
    issuers: [...config.issuers, { name: 'legacy', issuer: LEGACY, audiences: [LEGACY_AUD], introspection: { url: endpoint.url, client_id: 'bouncer', client_secret: 'bouncer-secret', cache: '60s' } }],
    roles: config.roles.map((role) => role.name === 'reporter' ? { ...role, assumed_by: [...role.assumed_by, { issuer: 'legacy', subject: 'looker-*' }] } : role),
    token_exchange: AGENT_FOR_REPORTER,
  }))
}, 90_000)

afterAll(async () => {
  await setup?.close()
  await endpoint?.close()
})

it('serves a token exchanged for an opaque token\'s user at the MCP endpoint', async () => {
  const token = await exchanged(setup.gateway.url, { subject: 'opaque-reporter', actor: await setup.idp.token('analytics-agent'), audience: MCP_RESOURCE })
  const client = await connect(`${setup.gateway.url}/mcp`, token, '2025-11-25')
  try {
    expect((await client.listTools()).tools.map((tool) => tool.name)).toContain('get_daily_report')
  } finally {
    await client.close()
  }
})
