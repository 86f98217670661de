// In the transparent mode (one server, prefix: false) a tool the server does not list is still
// the server's to answer, as it would be called directly. A name no tool may bear (MCP: 1-128
// letters, digits, _ - .) is not: a listed tool of that name is skipped, so a call by it is an
// unknown tool. Passed on, an agent's name of any length up to the body's limit was decided, kept
// in the catalog's policy cache and as a /metrics label for the life of the process, and sent on.
import { join } from 'node:path'
import { request } from 'undici'
import { afterAll, beforeAll, expect, it } from 'vitest'
import { auditRows, connect, MCP_RESOURCE, startMcpTestGateway, type McpTestSetup } from '../helpers/mcp.ts'
import { startListedToolsServer, type ListedToolsServer } from '../helpers/mcp-servers.ts'
import { waitFor } from '../helpers/wait.ts'

let server: ListedToolsServer
let setup: McpTestSetup

beforeAll(async () => {
  server = await startListedToolsServer([{ name: 'listed_tool', inputSchema: { type: 'object' } }])
  setup = await startMcpTestGateway('mcp-transparent-tool-name', (config) => ({
    ...config,
    mcp: { ...config.mcp, tools: [], servers: [{ name: 'direct', url: server.url, prefix: false }] },
  }))
}, 60_000)

afterAll(async () => {
  await setup?.close()
  await server?.close()
})

it('passes an unlisted tool name on, but refuses one no tool may bear as an unknown tool, unsent, unlabelled', async () => {
  const longName = `t${'x'.repeat(100_000)}`
  const reporter = await connect(`${setup.gateway.url}/mcp`, await setup.idp.token('looker-reports', { resource: MCP_RESOURCE }), '2025-11-25')
  try {
    // Unlisted but a tool's name: the server answers it, as before.
    expect(await reporter.callTool({ name: 'unlisted_tool', arguments: {} })).toMatchObject({ content: [{ type: 'text', text: 'unlisted_tool done' }] })
    await expect(reporter.callTool({ name: longName, arguments: {} })).rejects.toThrow(/Unknown tool/)
    await expect(reporter.callTool({ name: 'has space', arguments: {} })).rejects.toThrow(/Unknown tool/)
  } finally {
    await reporter.close()
  }
  expect(server.calls).toEqual(['unlisted_tool'])
  const db = join(setup.dir, 'audit.db')
  await waitFor(() => auditRows(db, "code = 'route_not_found'").length >= 2, 'the two refusals\' records')
  expect(auditRows(db, "code = 'route_not_found'").map((row) => row.status)).toEqual([403, 403])
  const metrics = await (await request(`${setup.gateway.adminUrl}/metrics`)).body.text()
  expect(metrics).toContain('route="mcp:unlisted_tool"')
  expect(metrics).not.toContain('xxxxxxxxxx')
  expect(metrics).not.toContain('has space')
}, 60_000)
