// A route tool's call continues the agent's trace (SPEC "On the wire": the client's trace
// continued): the agent's traceparent reached neither the route's upstream nor the route's audit
// record, which began a new trace, so a tool call could not be followed from the agent's trace.
// The records of calls the pipeline does not carry (refused, held, a server's) had no trace at all.
import { join } from 'node:path'
import { Client, StreamableHTTPClientTransport } from '@modelcontextprotocol/client'
import { afterAll, beforeAll, expect, it } from 'vitest'
import { auditRows, MCP_RESOURCE, startMcpTestGateway, type McpTestSetup } from '../helpers/mcp.ts'
import { waitFor } from '../helpers/wait.ts'

const TRACE_ID = '0af7651916cd43dd8448eb211c80319c'
let setup: McpTestSetup

beforeAll(async () => {
  setup = await startMcpTestGateway('mcp-tool-call-trace')
}, 60_000)

afterAll(async () => {
  await setup?.close()
})

it('carries the agent\'s traceparent into the route\'s request and its record', async () => {
  const client = new Client({ name: 'traced-agent', version: '1' }, { supportedProtocolVersions: ['2025-11-25'] })
  await client.connect(new StreamableHTTPClientTransport(new URL(`${setup.gateway.url}/mcp`), {
    requestInit: { headers: { authorization: `Bearer ${await setup.idp.token('analytics-agent', { resource: MCP_RESOURCE })}`, traceparent: `00-${TRACE_ID}-b7ad6b7169203331-01` } },
  }))
  try {
    const result = await client.callTool({ name: 'get_daily_report', arguments: { region: 'eu' } })
    expect(result.isError).toBe(false)
  } finally {
    await client.close()
  }
  const forwarded = setup.upstream.received.find((request) => request.url === '/sales/daily/eu')
  expect(String(forwarded?.headers.traceparent)).toMatch(new RegExp(`^00-${TRACE_ID}-[0-9a-f]{16}-01$`))
  const db = join(setup.dir, 'audit.db')
  await waitFor(() => auditRows(db, "route = 'sales.daily'").length === 1, 'the route\'s record', 10_000)
  expect(auditRows(db, "route = 'sales.daily'")[0]).toMatchObject({ tool: 'get_daily_report', trace_id: TRACE_ID })
}, 60_000)

it('puts the agent\'s trace in the record of a call it refuses itself', async () => {
  const client = new Client({ name: 'traced-agent', version: '1' }, { supportedProtocolVersions: ['2025-11-25'] })
  await client.connect(new StreamableHTTPClientTransport(new URL(`${setup.gateway.url}/mcp`), {
    requestInit: { headers: { authorization: `Bearer ${await setup.idp.token('analytics-agent', { resource: MCP_RESOURCE })}`, traceparent: `00-${TRACE_ID}-c7ad6b7169203331-01` } },
  }))
  try {
    await expect(client.callTool({ name: 'list_customers', arguments: {} })).rejects.toThrow(/Unknown tool/)
  } finally {
    await client.close()
  }
  const db = join(setup.dir, 'audit.db')
  await waitFor(() => auditRows(db, "route = 'mcp:list_customers'").length === 1, 'the refusal\'s record', 10_000)
  expect(auditRows(db, "route = 'mcp:list_customers'")[0]).toMatchObject({ code: 'policy_denied', trace_id: TRACE_ID })
}, 60_000)
