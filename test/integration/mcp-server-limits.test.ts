// The tools of an MCP server behind the gateway had no limits: limits hang on routes, and such a tool
// has none, so a looping agent called the server as fast as it could, though the docs said every
// call goes through the same limits as an HTTP request (the MCP probe's left item). A server's
// `limits` are now charged for every call of its tools, as a route's are: a refused call does not
// reach the server, and the agent's tool result and the audit record name the limit.
import { join } from 'node:path'
import type { Client } from '@modelcontextprotocol/client'
import { afterAll, beforeAll, expect, it } from 'vitest'
import { auditRows, connect, MCP_RESOURCE, startMcpTestGateway, type McpTestSetup } from '../helpers/mcp.ts'
import { startListedToolsServer, type ListedToolsServer } from '../helpers/mcp-servers.ts'
import { waitFor } from '../helpers/wait.ts'

let server: ListedToolsServer
let setup: McpTestSetup
let agent: Client

beforeAll(async () => {
  server = await startListedToolsServer([{ name: 'lookup', inputSchema: { type: 'object' } }], () => ({ content: [{ type: 'text', text: `looked up ${server.calls.length}` }] }))
  setup = await startMcpTestGateway('mcp-server-limits', (config) => ({
    ...config,
    limits: [{ name: 'lookup-pace', key: 'principal', rate: '1/m', burst: 2 }],
    mcp: { ...config.mcp, servers: [{ name: 'tools', url: server.url, limits: ['lookup-pace'] }] },
  }))
  agent = await connect(`${setup.gateway.url}/mcp`, await setup.idp.token('looker-reports', { resource: MCP_RESOURCE }), '2025-11-25')
}, 60_000)

afterAll(async () => {
  await agent?.close()
  await setup?.close()
  await server?.close()
})

it('charges a server\'s limits for each call of its tools, and refuses past them without asking the server', async () => {
  for (const n of [1, 2]) expect(await agent.callTool({ name: 'tools__lookup', arguments: {} })).toMatchObject({ content: [{ type: 'text', text: `looked up ${n}` }] })
  const refused = (await agent.callTool({ name: 'tools__lookup', arguments: {} })) as { isError?: boolean; content: Array<{ text: string }> }
  expect(refused.isError).toBe(true)
  expect(JSON.parse(refused.content[0]?.text ?? '{}')).toMatchObject({ status: 429, code: 'rate_limited' })
  expect(server.calls).toEqual(['lookup', 'lookup'])
  const log = join(setup.dir, 'audit.db')
  await waitFor(() => auditRows(log, "route = 'mcp:tools__lookup'").length === 3, 'the three calls\' records', 15_000)
  expect(auditRows(log, "route = 'mcp:tools__lookup'").map((r) => [r.status, r.decision, r.code, r.limit])).toEqual([
    [200, 'allow', null, null],
    [200, 'allow', null, null],
    [429, 'deny', 'rate_limited', 'lookup-pace'],
  ])
}, 60_000)
