// A tool call of an aggregated MCP server refused by the server's limits (mcp.servers[].limits) was
// answered 429 and audited with its limit, but bouncer_rate_limited_total{limit} did not move: the
// call is audited by the MCP endpoint, not the pipeline, and only the pipeline counted refusals. An
// alert on that counter missed a looping agent the audit log and the console's Catalog showed.
import type { Client } from '@modelcontextprotocol/client'
import { afterAll, beforeAll, expect, it } from 'vitest'
import { connect, MCP_RESOURCE, startMcpTestGateway, type McpTestSetup } from '../helpers/mcp.ts'
import { startListedToolsServer, type ListedToolsServer } from '../helpers/mcp-servers.ts'
import { metricValue } from '../helpers/wait.ts'

let server: ListedToolsServer
let setup: McpTestSetup
let agent: Client

beforeAll(async () => {
  server = await startListedToolsServer([{ name: 'lookup', inputSchema: { type: 'object' } }], () => ({ content: [{ type: 'text', text: 'looked up' }] }))
  setup = await startMcpTestGateway('tel2-mcp-limit-metrics', (config) => ({
    ...config,
    limits: [{ name: 'lookup-pace', key: 'principal', rate: '1/m', burst: 1 }],
    mcp: { ...config.mcp, servers: [{ name: 'tools', url: server.url, limits: ['lookup-pace'] }] },
  }))
  agent = await connect(`${setup.gateway.url}/mcp`, await setup.idp.token('looker-reports', { resource: MCP_RESOURCE }), '2025-11-25')
}, 60_000)

afterAll(async () => {
  await agent?.close()
  await setup?.close()
  await server?.close()
})

it('counts a tool call its server\'s limit refused in bouncer_rate_limited_total, as a route\'s refusal is', async () => {
  await agent.callTool({ name: 'tools__lookup', arguments: {} })
  const refused = (await agent.callTool({ name: 'tools__lookup', arguments: {} })) as { isError?: boolean; content: Array<{ text: string }> }
  expect(JSON.parse(refused.content[0]?.text ?? '{}')).toMatchObject({ status: 429, code: 'rate_limited' })
  expect(await metricValue(setup.gateway.adminUrl, 'bouncer_rate_limited_total{limit="lookup-pace",code="rate_limited"}')).toBe(1)
}, 60_000)
