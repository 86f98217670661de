// Found by an adversarial probe (helper): a route tool's path parameter that spells another route's
// literal segment was dispatched to that other route (first in file order), escaping the tool's
// own route: that route's approval rule and the mcp:<tool> deny of the tool that names it.
import { join } from 'node:path'
import type { Client } from '@modelcontextprotocol/client'
import { afterAll, beforeAll, expect, it } from 'vitest'
import type { TestGateway } from '../helpers/gateway.ts'
import type { TestIdentityProvider } from '../helpers/identity-provider.ts'
import { auditRows, connect, MCP_RESOURCE, startMcpTestGateway, type McpTestSetup } from '../helpers/mcp.ts'
import type { TestUpstream } from '../helpers/upstream.ts'
import { waitFor } from '../helpers/wait.ts'

let setup: McpTestSetup
let idp: TestIdentityProvider
let upstream: TestUpstream
let gateway: TestGateway
let dir: string
let reporter: Client
let agent: Client

beforeAll(async () => {
  setup = await startMcpTestGateway('mcp-tool-route', (base) => {
    const config = {
      ...base,
      mcp: {
        ...base.mcp,
        tools: [
          { route: 'sales.export', name: 'export_customers' },
          { route: 'sales.customer', name: 'get_customer' },
        ],
        approvals: [{ tools: ['export_*'], approvers: ['ops'], ttl: '15m' }],
      },
    } as Omit<typeof base, 'routes'> & {
      routes: object[]
      roles: Array<{ name: string; assumed_by: object[]; policies: string[] }>
      policies: Array<{ statements: object[] }>
    }
    config.routes = [
      // The dangerous, approval-gated route comes first in file order.
      { id: 'sales.export', methods: ['GET'], path: '/sales/customers/export', upstream: 'sales-api' },
      { id: 'sales.customer', methods: ['GET'], path: '/sales/customers/:id', upstream: 'sales-api' },
    ]
    config.roles.push({ name: 'ops', assumed_by: [{ issuer: 'corp-sso', subject: 'no-tenant' }], policies: [] })
    // The agent: the get_customer tool only; the export tool explicitly denied; GET on sales routes.
    config.policies[0]!.statements = [
      { sid: 'AgentTools', effect: 'allow', actions: ['call'], routes: ['mcp:get_customer'] },
      { sid: 'AgentNoExport', effect: 'deny', actions: ['call'], routes: ['mcp:export_customers'] },
      { sid: 'AgentSales', effect: 'allow', actions: ['GET'], routes: ['sales.*'] },
    ]
    return config
  })
  ;({ idp, upstream, gateway, dir } = setup)
  reporter = await connect(`${gateway.url}/mcp`, await idp.token('looker-reports', { resource: MCP_RESOURCE }), '2025-11-25')
  agent = await connect(`${gateway.url}/mcp`, await idp.token('analytics-agent', { resource: MCP_RESOURCE }), '2025-11-25')
}, 90_000)

afterAll(async () => {
  await reporter?.close()
  await agent?.close()
  await setup?.close()
})

it('the approval-gated tool itself is held for approval (baseline)', async () => {
  const first = await reporter.callTool({ name: 'export_customers', arguments: {} })
  expect((first.structuredContent as { status: string }).status).toBe('pending_approval')
  expect(upstream.received.filter((r) => r.url === '/sales/customers/export')).toHaveLength(0)
})

it('get_customer with id "export" does not reach the approval-gated export route', async () => {
  const before = upstream.received.length
  const result = await reporter.callTool({ name: 'get_customer', arguments: { id: 'export' } })
  const reached = upstream.received.slice(before).map((r) => r.url)
  // Expected: the call stays on sales.customer (refused, or its own route), never sales.export without approval.
  expect(reached, JSON.stringify(result)).not.toContain('/sales/customers/export')
  await waitFor(() => auditRows(join(dir, 'audit.db'), "tool = 'get_customer'").length > 0, 'audit', 20_000)
  const rows = auditRows(join(dir, 'audit.db'), "tool = 'get_customer'")
  expect(rows.map((r) => r.route)).not.toContain('sales.export')
})

it('get_customer with id "EXPORT" (case-folded literal) does not reach it either', async () => {
  const before = upstream.received.length
  const result = await reporter.callTool({ name: 'get_customer', arguments: { id: 'EXPORT' } })
  const reached = upstream.received.slice(before).map((r) => r.url.toLowerCase())
  expect(reached, JSON.stringify(result)).not.toContain('/sales/customers/export')
})

it('an agent denied mcp:export_customers cannot run the export route through get_customer', async () => {
  await expect(agent.callTool({ name: 'export_customers', arguments: {} })).rejects.toThrow(/Unknown tool/)
  const before = upstream.received.length
  const result = await agent.callTool({ name: 'get_customer', arguments: { id: 'export' } })
  const reached = upstream.received.slice(before).map((r) => r.url)
  expect(reached, JSON.stringify(result)).not.toContain('/sales/customers/export')
})
