// On behalf of a user over MCP: an agent exchanges the user's token and its own for a token naming
// the MCP resource, and the MCP endpoint takes it. `tools/list` then shows, and `tools/call` runs,
// only the tools that both the user's roles and the agent's roles allow; the audit record of a
// call names both.
import { join } from 'node:path'
import { request } from 'undici'
import { afterAll, beforeAll, expect, it } from 'vitest'
import { exchange, exchanged } from '../helpers/exchange.ts'
import type { TestGateway } from '../helpers/gateway.ts'
import type { TestIdentityProvider } from '../helpers/identity-provider.ts'
import { AGENT_FOR_REPORTER, auditRows, connect, MCP_RESOURCE, startMcpTestGateway, type McpTestSetup } from '../helpers/mcp.ts'
import { waitFor } from '../helpers/wait.ts'

let setup: McpTestSetup
let idp: TestIdentityProvider
let gateway: TestGateway
let dir: string

beforeAll(async () => {
  // looker-reports (role reporter: every tool, every sales route) is the user; analytics-agent
  // (role agent: the two tools, but only the sales.daily route) acts for it.
  setup = await startMcpTestGateway('mcp-exchange', (config) => ({ ...config, token_exchange: AGENT_FOR_REPORTER }))
  ;({ idp, gateway, dir } = setup)
}, 90_000)

afterAll(() => setup?.close())

/** looker-reports' token and the agent's, to exchange for a target. */
const tokens = async () => ({ subject: await idp.token('looker-reports'), actor: await idp.token('analytics-agent') })

async function exchangedForMcp(): Promise<string> {
  return exchanged(gateway.url, { ...(await tokens()), resource: MCP_RESOURCE })
}

it('lists and runs only the tools both the user and the agent may use, and audits both', async () => {
  const user = await connect(`${gateway.url}/mcp`, await idp.token('looker-reports', { resource: MCP_RESOURCE }), '2025-11-25')
  try {
    expect((await user.listTools()).tools.map((t) => t.name).sort()).toEqual(['get_daily_report', 'list_customers'])
  } finally {
    await user.close()
  }
  const client = await connect(`${gateway.url}/mcp`, await exchangedForMcp(), '2025-11-25')
  try {
    // The agent's role may call list_customers, but not the route behind it: so neither may the delegation.
    expect((await client.listTools()).tools.map((t) => t.name)).toEqual(['get_daily_report'])
    const result = await client.callTool({ name: 'get_daily_report', arguments: { region: 'eu' } })
    expect(result.isError).toBeFalsy()
    // Calling it anyway gets the answer of a tool that does not exist (list == call).
    await expect(client.callTool({ name: 'list_customers', arguments: {} })).rejects.toThrow(/Unknown tool: list_customers/)
  } finally {
    await client.close()
  }
  await waitFor(() => auditRows(join(dir, 'audit.db'), "tool = 'get_daily_report' AND status = 200").length > 0, 'the tool call\'s audit record', 20_000)
  const [row] = auditRows(join(dir, 'audit.db'), "tool = 'get_daily_report' AND status = 200")
  expect(row).toMatchObject({ subject: 'looker-reports', actor: 'analytics-agent', credential: 'exchanged' })
})

it('refuses an exchanged token for another audience', async () => {
  const answer = await exchange(gateway.url, { ...(await tokens()), audience: 'https://elsewhere.test' })
  expect(answer.status).toBe(400)
  expect(answer.body.error).toBe('invalid_target')
})

it('names the gateway\'s own token exchange among the authorization servers of its protected-resource metadata', async () => {
  // The endpoint takes the tokens the exchange issues for mcp.resource: a client reading the
  // metadata (RFC 9728) was told only of the identity provider (a probe).
  const res = await request(`${gateway.url}/.well-known/oauth-protected-resource/mcp`)
  expect(res.statusCode).toBe(200)
  expect(await res.body.json()).toMatchObject({ resource: MCP_RESOURCE, authorization_servers: [idp.issuer, 'https://mcp.bouncer.test'] })
})
