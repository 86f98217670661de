// A tool name is the agent's to choose: `tools/call` with any string audits the call as the route
// `mcp:<name>`. The record's route was written as it came, unlike every other value a client
// chooses: a 300,000-character name wrote a 300 KB record, and a name with a NUL made the
// PostgreSQL sink refuse the batch that held it, so that record, the ones beside it and every one
// after were never stored (an agent with an MCP token stopped the audit trail).
import pg from 'pg'
import { afterAll, beforeAll, expect, it } from 'vitest'
import { connect, MCP_RESOURCE, startMcpTestGateway, type McpTestSetup } from '../helpers/mcp.ts'
import { dropSchema, SHARED_POSTGRES, uniqueSchema } from '../helpers/postgres.ts'
import { waitFor } from '../helpers/wait.ts'

const schema = uniqueSchema('mcp_tool_name')
let setup: McpTestSetup

beforeAll(async () => {
  setup = await startMcpTestGateway('mcp-probe-tool-name-audit', (config) => ({ ...config, audit: { ...config.audit, sinks: [{ type: 'postgres', url: SHARED_POSTGRES, schema }] } }))
}, 60_000)
afterAll(async () => {
  await setup?.close()
  await dropSchema(SHARED_POSTGRES, schema)
})

async function toolRecords(): Promise<Array<{ route: string; tool: string; code: string | null }>> {
  const client = new pg.Client({ connectionString: SHARED_POSTGRES })
  await client.connect()
  try {
    return (await client.query(`SELECT route, tool, code FROM ${schema}.audit_records WHERE tool IS NOT NULL ORDER BY time`)).rows
  } catch {
    return [] // the table is not made yet
  } finally {
    await client.end()
  }
}

it('audits calls to tools named with a NUL or 300,000 characters, and every call after them', async () => {
  const client = await connect(`${setup.gateway.url}/mcp`, await setup.idp.token('looker-reports', { resource: MCP_RESOURCE }), '2025-11-25')
  const long = 'x'.repeat(300_000)
  try {
    for (const name of ['before_nul', 'a\u0000b', long]) {
      await expect(client.callTool({ name, arguments: {} })).rejects.toThrow(/Unknown tool/)
    }
    expect((await client.callTool({ name: 'get_daily_report', arguments: { region: 'eu' } })).isError).toBe(false)
  } finally {
    await client.close()
  }
  await waitFor(async () => (await toolRecords()).length >= 4, 'the four tool calls\' records', 15_000)
  const records = await toolRecords()
  expect(records.map((r) => r.tool.slice(0, 10))).toEqual(['before_nul', 'a\ufffdb', 'xxxxxxxxxx', 'get_daily_'])
  expect(records[0]).toMatchObject({ route: 'mcp:before_nul', code: 'route_not_found' })
  expect(records[1]).toMatchObject({ route: 'mcp:a\ufffdb', code: 'route_not_found' })
  expect(records[2]?.route.length).toBeLessThan(2100)
  expect(records[2]?.route).toMatch(/^mcp:x+…\(truncated, 300004 chars\)$/)
  expect(records[3]).toMatchObject({ route: 'sales.daily', code: null })
}, 60_000)
