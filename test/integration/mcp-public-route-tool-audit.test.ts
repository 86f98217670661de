// A tool on a public route is still an MCP call by an authenticated agent: its audit record names
// the agent (the pipeline skips authorization on a public route, and the record named nobody),
// while the route's backend sees an anonymous request, as over HTTP.
import { join } from 'node:path'
import { afterAll, beforeAll, expect, it } from 'vitest'
import { auditRows, connect, MCP_RESOURCE, startMcpTestGateway, type McpTestSetup } from '../helpers/mcp.ts'
import { waitFor } from '../helpers/wait.ts'

let setup: McpTestSetup

beforeAll(async () => {
  setup = await startMcpTestGateway('mcp-public-route-audit', (config) => {
    config.routes.push({ id: 'sales.status', methods: ['GET'], path: '/sales/status', upstream: 'sales-api', public: true } as never)
    config.mcp.tools.push({ route: 'sales.status', name: 'sales_status' } as never)
    return config
  })
}, 60_000)

afterAll(async () => {
  await setup?.close()
})

it('names the agent in the record of a public route tool\'s call', async () => {
  const client = await connect(`${setup.gateway.url}/mcp`, await setup.idp.token('looker-reports', { resource: MCP_RESOURCE }), '2025-11-25')
  try {
    const result = await client.callTool({ name: 'sales_status', arguments: {} })
    expect(result.isError).toBe(false)
  } finally {
    await client.close()
  }
  const db = join(setup.dir, 'audit.db')
  await waitFor(() => auditRows(db, "tool = 'sales_status'").length === 1, 'the call\'s record', 10_000)
  expect(auditRows(db, "tool = 'sales_status'")[0]).toMatchObject({
    route: 'sales.status', status: 200, decision: 'allow', subject: 'looker-reports', issuer: setup.idp.issuer, credential: 'bearer', roles: '["reporter"]',
  })
}, 60_000)
