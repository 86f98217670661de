// An aggregated MCP server is a third party's: what it lists reaches every agent, and its schemas
// are run by the gateway. Found by a probe: tool names with spaces, control characters or 10 KB
// were offered to agents as they came.
import { afterAll, beforeAll, expect, it } from 'vitest'
import type { Client } from '@modelcontextprotocol/client'
import { connect, MCP_RESOURCE, startMcpTestGateway, type McpTestSetup } from '../helpers/mcp.ts'
import { startListedToolsServer, type ListedToolsServer } from '../helpers/mcp-servers.ts'

/** Names MCP does not allow (1-128 letters, digits, _ - .), the last only once prefixed `odd__`. */
const HOSTILE_NAMES = ['has space', 'bell\u0007ring', 'x'.repeat(10_000), '', 'y'.repeat(125)]

let odd: ListedToolsServer
let setup: McpTestSetup
let client: Client

beforeAll(async () => {
  odd = await startListedToolsServer([
    { name: 'good_tool', inputSchema: { type: 'object' } },
    ...HOSTILE_NAMES.map((name) => ({ name, inputSchema: { type: 'object' as const } })),
  ])
  setup = await startMcpTestGateway('mcp-hostile-server', (config) => ({ ...config, mcp: { ...config.mcp, servers: [{ name: 'odd', url: odd.url }] } }))
  client = await connect(`${setup.gateway.url}/mcp`, await setup.idp.token('looker-reports', { resource: MCP_RESOURCE }), '2025-11-25')
}, 60_000)

afterAll(async () => {
  await client?.close()
  await setup?.close()
  await odd?.close()
})

it('skips a server\'s tools whose names MCP does not allow, and says which in a warning', async () => {
  expect((await client.listTools()).tools.map((tool) => tool.name)).toEqual(['get_daily_report', 'list_customers', 'odd__good_tool'])
  await expect(client.callTool({ name: 'odd__has space', arguments: {} })).rejects.toThrow(/Unknown tool/)
  expect(odd.calls).toEqual([])
  const warnings = setup.gateway.logs.filter((line) => line.includes('MCP server tool skipped'))
  expect(warnings.length).toBeGreaterThanOrEqual(HOSTILE_NAMES.length)
  expect(warnings.join('\n')).toContain('"server":"odd"')
  expect(warnings.join('\n')).toContain('has space')
  // The warning names the tool, bounded: not 10 KB of it.
  expect(Math.max(...warnings.map((line) => line.length))).toBeLessThan(1_000)
})
