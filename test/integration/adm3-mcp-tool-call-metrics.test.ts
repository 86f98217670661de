// A tool call the MCP endpoint decides itself — refused by policy, held for approval, an aggregated
// MCP server's call run or failed — is audited as `mcp:<tool>`, but bouncer_requests_total counted only
// the MCP request's own POST (builtin/mcp, 200 allow): a dashboard or alert on denials missed every
// tool call an agent was refused, which the audit log and the console showed (found by the admin
// probe). A route tool's call that runs is the route's own request, counted by the pipeline as
// before. A name no tool has (the agent's own text) is counted under (none), as a request no route
// matches: it cannot grow the series without end.
import type { Client } from '@modelcontextprotocol/client'
import { afterAll, beforeAll, expect, it } from 'vitest'
import { connect, MCP_RESOURCE, startMcpTestGateway, type McpTestSetup } from '../helpers/mcp.ts'
import { startListedToolsServer, type ListedToolsServer } from '../helpers/mcp-servers.ts'
import { metricValue } from '../helpers/wait.ts'

let server: ListedToolsServer
let setup: McpTestSetup
let agent: Client
let reporter: Client

beforeAll(async () => {
  server = await startListedToolsServer([{ name: 'lookup', inputSchema: { type: 'object' } }], () => ({ content: [{ type: 'text', text: 'looked up' }] }))
  setup = await startMcpTestGateway('adm3-mcp-tool-call-metrics', (config) => ({
    ...config,
    mcp: { ...config.mcp, servers: [{ name: 'tools', url: server.url }], approvals: [{ tools: ['list_customers'], approvers: ['agent'], ttl: '15m' }] },
  }))
  agent = await connect(`${setup.gateway.url}/mcp`, await setup.idp.token('analytics-agent', { resource: MCP_RESOURCE }), '2025-11-25')
  reporter = await connect(`${setup.gateway.url}/mcp`, await setup.idp.token('looker-reports', { resource: MCP_RESOURCE }), '2025-11-25')
}, 60_000)

afterAll(async () => {
  await agent?.close()
  await reporter?.close()
  await setup?.close()
  await server?.close()
})

const series = (route: string, status: number, decision: string) => `bouncer_requests_total{route="${route}",status="${status}",decision="${decision}"}`

it('counts each tool call the MCP endpoint decides in bouncer_requests_total, by its tool', async () => {
  // The agent's policy names two route tools only: the server's tool is refused.
  await agent.callTool({ name: 'tools__lookup', arguments: {} }).catch(() => null)
  // Held for approval.
  await reporter.callTool({ name: 'list_customers', arguments: {} })
  // Run by its server.
  await reporter.callTool({ name: 'tools__lookup', arguments: {} })
  // No such tool, twice, by names of the agent's own.
  await reporter.callTool({ name: 'no-such-tool-1', arguments: {} }).catch(() => null)
  await reporter.callTool({ name: 'no-such-tool-2', arguments: {} }).catch(() => null)
  const { adminUrl } = setup.gateway
  expect(await metricValue(adminUrl, series('mcp:tools__lookup', 403, 'deny'))).toBe(1)
  expect(await metricValue(adminUrl, series('mcp:list_customers', 202, 'deny'))).toBe(1)
  expect(await metricValue(adminUrl, series('mcp:tools__lookup', 200, 'allow'))).toBe(1)
  expect(await metricValue(adminUrl, series('(none)', 403, 'deny'))).toBe(2)
  const body = await (await fetch(`${adminUrl}/metrics`)).text()
  expect(body).not.toContain('no-such-tool')
}, 60_000)
