// The audit record of an MCP request (tools/list, initialize, a session's DELETE…) names the caller
// the endpoint authenticated: the endpoint is a public built-in route to the pipeline, and its
// records named nobody, so `bouncer audit --principal` missed every MCP request an agent made.
import { join } from 'node:path'
import { afterAll, beforeAll, expect, it } from 'vitest'
import { auditRows, connect, MCP_RESOURCE, startMcpTestGateway, type McpTestSetup } from '../helpers/mcp.ts'
import { waitFor } from '../helpers/wait.ts'

let setup: McpTestSetup

beforeAll(async () => {
  setup = await startMcpTestGateway('mcp-endpoint-audit-caller')
}, 60_000)

afterAll(async () => {
  await setup?.close()
})

it('names the authenticated caller in the records of its MCP requests', async () => {
  const client = await connect(`${setup.gateway.url}/mcp`, await setup.idp.token('analytics-agent', { resource: MCP_RESOURCE }), '2025-11-25')
  try {
    expect((await client.listTools()).tools.length).toBeGreaterThan(0)
  } finally {
    await client.close()
  }
  const db = join(setup.dir, 'audit.db')
  // initialize, notifications/initialized, tools/list (and the DELETE of close): each a record.
  await waitFor(() => auditRows(db, "route = 'builtin/mcp'").length >= 3, 'the MCP requests\' records', 10_000)
  for (const row of auditRows(db, "route = 'builtin/mcp'")) {
    expect(row).toMatchObject({ subject: 'analytics-agent', issuer: setup.idp.issuer, credential: 'bearer', roles: '["agent"]' })
  }
}, 60_000)
