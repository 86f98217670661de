// A route tool's call refused by the pipeline before it authorized anything — arguments that make a
// bad path, or another route's path — is the agent's doing, and its audit record names the agent.
// It named nobody (no issuer, subject, credential or roles): an agent probing `..` through a tool
// was audited as an anonymous request.
import { afterAll, beforeAll, expect, it } from 'vitest'
import { auditRows, connect, MCP_RESOURCE, startMcpTestGateway, type McpTestSetup } from '../helpers/mcp.ts'
import { waitFor } from '../helpers/wait.ts'
import { join } from 'node:path'

let setup: McpTestSetup

beforeAll(async () => {
  setup = await startMcpTestGateway('mcp-refused-audit')
}, 60_000)

afterAll(async () => {
  await setup?.close()
})

it('names the agent in the record of a tool call refused with bad_path', async () => {
  const client = await connect(`${setup.gateway.url}/mcp`, await setup.idp.token('analytics-agent', { resource: MCP_RESOURCE }), '2025-11-25')
  try {
    for (const region of ['..', 'a/b']) {
      const result = await client.callTool({ name: 'get_daily_report', arguments: { region } })
      expect(result.isError).toBe(true)
      expect(JSON.stringify(result.content)).toContain('bad_path')
    }
  } finally {
    await client.close()
  }
  const db = join(setup.dir, 'audit.db')
  await waitFor(() => auditRows(db, "code = 'bad_path'").length === 2, 'the two records', 10_000)
  for (const row of auditRows(db, "code = 'bad_path'")) {
    expect(row).toMatchObject({ tool: 'get_daily_report', subject: 'analytics-agent', issuer: setup.idp.issuer, credential: 'bearer', roles: '["agent"]', decision: 'deny', status: 400 })
  }
}, 60_000)
