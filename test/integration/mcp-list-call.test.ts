// list == call: for every role and every tool, `tools/list` shows the tool exactly when `tools/call`
// runs it. Roles allowed by `mcp:<tool>` but refused by the route's own policy, explicit denies,
// conditions that do not hold, and callers with no role at all are all in the table.
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, expect, it } from 'vitest'
import { startTestGateway, type TestGateway } from '../helpers/gateway.ts'
import { DEFAULT_CLIENTS, startIdentityProvider, type TestIdentityProvider } from '../helpers/identity-provider.ts'
import { connect, MCP_RESOURCE, mcpTestConfig } from '../helpers/mcp.ts'
import { startChangingServer, type ChangingMcpServer } from '../helpers/mcp-servers.ts'
import { startUpstream, type TestUpstream } from '../helpers/upstream.ts'
import { waitFor } from '../helpers/wait.ts'

let idp: TestIdentityProvider
let upstream: TestUpstream
let tickets: ChangingMcpServer
let gateway: TestGateway
let dir: string

const CALLERS = ['analytics-agent', 'looker-reports', 'ops-oncall', 'no-tenant'] as const
const TOOLS = ['get_daily_report', 'list_customers', 'tickets__alpha', 'tickets__slow'] as const
const ARGUMENTS: Record<string, Record<string, unknown>> = { get_daily_report: { region: 'eu' } }

beforeAll(async () => {
  ;[idp, upstream, tickets] = await Promise.all([
    startIdentityProvider({ clients: [...DEFAULT_CLIENTS, { clientId: 'ops-oncall', secret: 'ops-oncall-secret-0123456789abcd' }] }),
    startUpstream(),
    startChangingServer(),
  ])
  dir = await mkdtemp(join(tmpdir(), 'bouncer-mcp-table-'))
  const config = mcpTestConfig(idp.issuer, upstream.url, dir, { servers: [{ name: 'tickets', url: tickets.url }] })
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
  gateway = await startTestGateway(config)
  await waitFor(() => gateway.state.runtime.issuerKeys.get('corp-sso')?.state === 'ready', 'keys', 20_000)
}, 90_000)

afterAll(async () => {
  await gateway?.close()
  await Promise.all([upstream?.close(), tickets?.close(), idp?.stop()])
  await rm(dir, { recursive: true, force: true })
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
