// list == call: for every role and every tool, `tools/list` shows the tool exactly when `tools/call`
// runs it. Roles allowed by `mcp:<tool>` but refused by the route's own policy, explicit denies,
// conditions that do not hold, and callers with no role at all are all in the table.
import { afterAll, beforeAll, expect, it } from 'vitest'
import type { TestGateway } from '../helpers/gateway.ts'
import type { TestIdentityProvider } from '../helpers/identity-provider.ts'
import { connect, MCP_RESOURCE, startMcpTestGateway, WITH_OPS_ONCALL, type McpTestSetup } from '../helpers/mcp.ts'
import { startChangingServer, type ChangingMcpServer } from '../helpers/mcp-servers.ts'

let setup: McpTestSetup
let idp: TestIdentityProvider
let tickets: ChangingMcpServer
let gateway: TestGateway

const CALLERS = ['analytics-agent', 'looker-reports', 'ops-oncall', 'no-tenant'] as const
const TOOLS = ['get_daily_report', 'list_customers', 'tickets__alpha', 'tickets__slow'] as const
const ARGUMENTS: Record<string, Record<string, unknown>> = { get_daily_report: { region: 'eu' } }

beforeAll(async () => {
  tickets = await startChangingServer()
  setup = await startMcpTestGateway('mcp-table', (config) => {
    config.roles.push({ name: 'ops', assumed_by: [{ issuer: 'corp-sso', subject: 'ops-oncall' }], policies: ['ops'] })
    config.policies.push({
      name: 'ops',
      statements: [
        { sid: 'OpsTools', effect: 'allow', actions: ['call'], routes: ['mcp:*'] },
        { sid: 'OpsNoSlow', effect: 'deny', actions: ['call'], routes: ['mcp:tickets__slow'] },
        // Only from the office: this caller is on 127.0.0.1, so the report stays out of reach.
        { sid: 'OpsReportsFromOffice', effect: 'allow', actions: ['GET'], routes: ['sales.daily'], conditions: { source_ip: ['10.0.0.0/8'] } },
        { sid: 'OpsCustomers', effect: 'allow', actions: ['GET'], routes: ['sales.customers'] },
      ],
    } as never)
    return { ...config, mcp: { ...config.mcp, servers: [{ name: 'tickets', url: tickets.url }] } }
  }, { idp: WITH_OPS_ONCALL })
  ;({ idp, gateway } = setup)
}, 90_000)

afterAll(async () => {
  await setup?.close()
  await tickets?.close()
})

it('tools/list shows exactly the tools tools/call runs, for every role × tool', async () => {
  const table: Record<string, Record<string, string>> = {}
  for (const caller of CALLERS) {
    const client = await connect(`${gateway.url}/mcp`, await idp.token(caller, { resource: MCP_RESOURCE }), '2025-11-25')
    try {
      const listed = new Set((await client.listTools()).tools.map((t) => t.name))
      table[caller] = {}
      for (const tool of TOOLS) {
        // Ran: not refused, and the route's own request was not refused by the pipeline either.
        const ran = await client.callTool({ name: tool, arguments: ARGUMENTS[tool] ?? {} }).then((result) => result.isError !== true, (err: Error) => {
          if (!/Unknown tool/.test(err.message)) throw err
          return false
        })
        expect({ caller, tool, listed: listed.has(tool) }).toEqual({ caller, tool, listed: ran })
        table[caller][tool] = ran ? 'call' : '-'
      }
    } finally {
      await client.close()
    }
  }
  // The decisions themselves, so the table is not trivially all-or-nothing.
  expect(table).toEqual({
    'analytics-agent': { get_daily_report: 'call', list_customers: '-', tickets__alpha: '-', tickets__slow: '-' },
    'looker-reports': { get_daily_report: 'call', list_customers: 'call', tickets__alpha: 'call', tickets__slow: 'call' },
    'ops-oncall': { get_daily_report: '-', list_customers: 'call', tickets__alpha: 'call', tickets__slow: '-' },
    'no-tenant': { get_daily_report: '-', list_customers: '-', tickets__alpha: '-', tickets__slow: '-' },
  })
}, 120_000)
