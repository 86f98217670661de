// `bouncer explain --tool` and POST /api/explain's `tool`: a tool call explained with the decision
// tools/call makes (the catalog's toolAccess), checked here against what tools/call actually did
// for an allowed, a refused, an on-behalf-of and an approval-gated call, and an unknown tool
// answered with the tools tools/list lists.
import { join } from 'node:path'
import type { Client } from '@modelcontextprotocol/client'
import { request } from 'undici'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { Explanation } from '../../src/gateway/explain.ts'
import { runCliInProcess } from '../helpers/cli-in-process.ts'
import { exchanged } from '../helpers/exchange.ts'
import { startChangingServer, type ChangingMcpServer } from '../helpers/mcp-servers.ts'
import { AGENT_FOR_REPORTER, auditRows, connect, MCP_RESOURCE, startMcpTestGateway, WITH_OPS_ONCALL, type McpTestSetup } from '../helpers/mcp.ts'
import { waitFor } from '../helpers/wait.ts'

const ADMIN = 'explain-tool-admin-token-0123456789'
let setup: McpTestSetup
let tickets: ChangingMcpServer
let config: Record<string, unknown> & { mcp: Record<string, unknown> }
let agentToken: string
let reporterToken: string
let onBehalfToken: string

beforeAll(async () => {
  // analytics-agent (role agent): calls get_daily_report, list_customers and the tickets server's
  // alpha, but may GET only sales.daily; looker-reports (role reporter): every tool and sales
  // route; list_* held for ops.
  tickets = await startChangingServer()
  let setupConfig: Record<string, unknown> = {}
  setup = await startMcpTestGateway('explain-tool', (config) => {
    config.roles.push({ name: 'ops', assumed_by: [{ issuer: 'corp-sso', subject: 'ops-oncall' }], policies: [] })
    config.policies[0]!.statements.push({ sid: 'AgentTickets', effect: 'allow', actions: ['call'], routes: ['mcp:tickets__alpha'] })
    const mcp = { ...config.mcp, servers: [{ name: 'tickets', url: tickets.url }], approvals: [{ tools: ['list_*'], approvers: ['ops'], ttl: '15m' }] }
    return (setupConfig = { ...config, admin: { token: ADMIN }, token_exchange: AGENT_FOR_REPORTER, mcp })
  }, { idp: WITH_OPS_ONCALL })
  config = setupConfig as typeof config
  const { idp, gateway } = setup
  agentToken = await idp.token('analytics-agent', { resource: MCP_RESOURCE })
  reporterToken = await idp.token('looker-reports', { resource: MCP_RESOURCE })
  // On behalf of: looker-reports' token exchanged, analytics-agent acting, for the MCP endpoint.
  onBehalfToken = await exchanged(gateway.url, { subject: await idp.token('looker-reports'), actor: await idp.token('analytics-agent'), resource: MCP_RESOURCE })
}, 90_000)

afterAll(async () => {
  await setup?.close()
  await tickets?.close()
})

/**
 * What the CLI (--json) and the admin API explain of one tool call: the same explanation, or the test
 * fails. `text`: the call whose text form the test reads, also run without --json (the same decision,
 * only formatted: its exit code must be the --json one's). A call whose text is not read is not run
 * so, a `bouncer explain` process (~1 s of CPU) that would check nothing the others do not.
 */
async function explained(tool: string, token: string, form: { text: boolean }): Promise<{ cli: Explanation; text: string; exit: number | null }> {
  const res = await request(`${setup.gateway.adminUrl}/api/explain`, {
    method: 'POST', headers: { authorization: `Bearer ${ADMIN}`, 'content-type': 'application/json' }, body: JSON.stringify({ tool, token }),
  })
  const api = (await res.body.json()) as Explanation
  expect(res.statusCode, JSON.stringify(api)).toBe(200)
  const json = await runCliInProcess(['explain', '--config', setup.gateway.file, '--tool', tool, '--token', '-', '--json'], { input: token })
  expect(json.stderr).toBe('')
  const cli = JSON.parse(json.stdout) as Explanation
  expect(cli).toEqual(api)
  if (!form.text) return { cli, text: '', exit: json.code }
  const text = await runCliInProcess(['explain', '--config', setup.gateway.file, '--tool', tool, '--token', '-'], { input: token })
  expect(text.code).toBe(json.code)
  return { cli, text: text.stdout, exit: json.code }
}

/** The audit record tools/call (or the route's pipeline) wrote for the call. */
async function recordOf(where: string): Promise<Record<string, unknown>> {
  const db = join(setup.dir, 'audit.db')
  await waitFor(() => auditRows(db, where).length > 0, `the record of ${where}`, 20_000)
  return auditRows(db, where).at(-1) as Record<string, unknown>
}

async function withClient<T>(token: string, use: (client: Client) => Promise<T>): Promise<T> {
  const client = await connect(`${setup.gateway.url}/mcp`, token, '2025-11-25')
  try {
    return await use(client)
  } finally {
    await client.close()
  }
}

describe('explain --tool agrees with what tools/call does', () => {
  it('an allowed route tool: allowed by the tool\'s statement and its route\'s, the request it makes named; the call runs', async () => {
    const result = await withClient(agentToken, (c) => c.callTool({ name: 'get_daily_report', arguments: { region: 'eu' } }))
    expect(result.isError).toBeFalsy()
    expect(await recordOf("tool = 'get_daily_report' AND subject = 'analytics-agent'")).toMatchObject({ route: 'sales.daily', status: 200, decision: 'allow' })

    const { cli: e, text, exit } = await explained('get_daily_report', agentToken, { text: true })
    expect(exit).toBe(0)
    expect(e.decision).toMatchObject({ effect: 'allow', status: 200, code: null, statement: 'AgentTools' })
    expect(e.tool).toEqual({
      name: 'get_daily_report', kind: 'route', route: { id: 'sales.daily', method: 'GET', path: '/sales/daily/:region', upstream: 'sales-api' }, server: null,
      decided_on: 'mcp:get_daily_report', denied_by: null, approval: null, available: null,
    })
    expect(e.identity).toMatchObject({ issuer: 'corp-sso', sub: 'analytics-agent', problems: [] })
    expect(e.roles.filter((r) => r.held).map((r) => r.role)).toEqual(['agent'])
    expect(e.statements.map((s) => [s.sid, s.route, s.matched])).toEqual([['AgentTools', 'mcp:get_daily_report', true], ['AgentDaily', 'sales.daily', true]])
    expect(text).toMatch(/^Tool +get_daily_report: route tool of sales.daily, sends GET \/sales\/daily\/:region → sales-api$/m)
    expect(text).toMatch(/^Decision +ALLOW: Allowed by statement "AgentTools" of policy "agent" \(call on mcp:get_daily_report\); no deny statement matched\. Its route "sales\.daily" allows GET too/m)
  })

  it('a tool whose route refuses the caller: denied on the route, as tools/call refused it, with the tools it may call', async () => {
    await withClient(agentToken, async (c) => {
      await expect(c.callTool({ name: 'list_customers', arguments: {} })).rejects.toThrow(/Unknown tool: list_customers/)
      const listed = (await c.listTools()).tools.map((t) => t.name)
      const record = await recordOf("route = 'mcp:list_customers' AND subject = 'analytics-agent' AND actor IS NULL")
      expect(record).toMatchObject({ status: 403, decision: 'deny', code: 'policy_denied', statement: null })

      const { cli: e, text, exit } = await explained('list_customers', agentToken, { text: true })
      expect(exit).toBe(1)
      expect(e.decision).toMatchObject({ effect: 'deny', status: record.status, code: record.code, statement: record.statement })
      expect(e.decision.reason).toMatch(/No statement allows GET on route "sales.customers" for role agent/)
      expect(e.tool).toMatchObject({ kind: 'route', decided_on: 'sales.customers', denied_by: null, approval: { approvers: ['ops'], ttl_seconds: 900 }, available: listed })
      expect(text).toMatch(/^Decision +DENY: 403 policy_denied: .*Unknown tool: list_customers.*get_daily_report, tickets__alpha\.$/m)
    })
  })

  it('on behalf of a user: decided for the user and for the agent, the agent\'s roles refusing where tools/call refused', async () => {
    await withClient(onBehalfToken, async (c) => {
      expect((await c.callTool({ name: 'get_daily_report', arguments: { region: 'us' } })).isError).toBeFalsy()
      await expect(c.callTool({ name: 'list_customers', arguments: {} })).rejects.toThrow(/Unknown tool: list_customers/)
    })
    expect(await recordOf("route = 'mcp:list_customers' AND actor = 'analytics-agent'")).toMatchObject({ subject: 'looker-reports', status: 403, code: 'policy_denied' })

    const allowed = await explained('get_daily_report', onBehalfToken, { text: false })
    expect(allowed.exit).toBe(0)
    expect(allowed.cli.decision).toMatchObject({ effect: 'allow', status: 200 })
    expect(allowed.cli.decision.reason).toMatch(/^Allowed for the user and for the agent acting for them \(the agent's statement "AgentTools" of policy "agent", call on mcp:get_daily_report\)/)
    expect(allowed.cli.identity).toMatchObject({ sub: 'looker-reports', actor: { sub: 'analytics-agent', roles: ['agent'], roles_from: 'token_exchange' } })
    expect(allowed.cli.roles.filter((r) => r.held).map((r) => r.role)).toEqual(['reporter'])
    expect(allowed.cli.statements.filter((s) => s.agent).map((s) => s.sid)).toEqual(['AgentTools', 'AgentDaily'])

    const denied = await explained('list_customers', onBehalfToken, { text: true })
    expect(denied.exit).toBe(1)
    expect(denied.cli.decision).toMatchObject({ effect: 'deny', status: 403, code: 'policy_denied' })
    expect(denied.cli.tool).toMatchObject({ decided_on: 'sales.customers', denied_by: 'actor', available: ['get_daily_report', 'tickets__alpha'] })
    expect(denied.cli.decision.reason).toMatch(/^403 policy_denied: Agent "analytics-agent" acting for "looker-reports" is denied by the agent's roles/)
    expect(denied.text).toMatch(/^Agent +analytics-agent .*acting for the subject, with roles agent/m)
  })

  it('an aggregated server\'s tool: SERVER__TOOL named with its server, allowed and refused as tools/call decides', async () => {
    await withClient(agentToken, async (c) => {
      expect(await c.callTool({ name: 'tickets__alpha', arguments: {} })).toMatchObject({ content: [{ type: 'text', text: 'alpha done' }] })
      await expect(c.callTool({ name: 'tickets__slow', arguments: {} })).rejects.toThrow(/Unknown tool: tickets__slow/)
    })
    // The record names the statement that allowed the call, as explain does (it was null).
    expect(await recordOf("route = 'mcp:tickets__alpha' AND subject = 'analytics-agent'")).toMatchObject({ status: 200, decision: 'allow', upstream: 'mcp:tickets', statement: 'AgentTickets' })
    const refusedRecord = await recordOf("route = 'mcp:tickets__slow' AND subject = 'analytics-agent'")

    const allowed = await explained('tickets__alpha', agentToken, { text: true })
    expect(allowed.exit).toBe(0)
    expect(allowed.cli.decision).toMatchObject({ effect: 'allow', status: 200, statement: 'AgentTickets' })
    expect(allowed.cli.tool).toMatchObject({ kind: 'server', route: null, server: { name: 'tickets', tool: 'alpha' }, decided_on: 'mcp:tickets__alpha' })
    expect(allowed.text).toMatch(/^Tool +tickets__alpha: tool alpha of MCP server tickets$/m)
    const refused = await explained('tickets__slow', agentToken, { text: false })
    expect(refused.exit).toBe(1)
    expect(refused.cli.decision).toMatchObject({ effect: 'deny', status: refusedRecord.status, code: refusedRecord.code, statement: refusedRecord.statement })
    expect(refused.cli.decision.reason).toMatch(/No statement allows call on route "mcp:tickets__slow" for role agent/)
  })

  it('an approval-gated tool: allowed, held for approval by ops, as tools/call held it', async () => {
    const held = await withClient(reporterToken, (c) => c.callTool({ name: 'list_customers', arguments: {} }))
    expect(held.structuredContent).toMatchObject({ status: 'pending_approval' })
    const record = await recordOf("route = 'mcp:list_customers' AND subject = 'looker-reports' AND actor IS NULL")
    expect(record).toMatchObject({ status: 202, code: 'approval_pending', statement: 'ReporterTools' })

    const { cli: e, text, exit } = await explained('list_customers', reporterToken, { text: true })
    expect(exit).toBe(0)
    expect(e.decision).toMatchObject({ effect: 'allow', status: 202, code: 'approval_pending', statement: record.statement })
    expect(e.tool).toMatchObject({ kind: 'route', approval: { tools: ['list_*'], approvers: ['ops'], ttl_seconds: 900 }, available: null })
    expect(text).toMatch(/^Approval +mcp.approvals holds it \(tools list_\*\): approvers ops, ttl 15m$/m)
    expect(text).toMatch(/Held for approval by ops \(ttl 15m\)/)
  })

  it('an unknown tool: refused as tools/call records it, with the tools tools/list lists for that caller', async () => {
    const listed = await withClient(reporterToken, async (c) => {
      await expect(c.callTool({ name: 'drop_tables', arguments: {} })).rejects.toThrow(/Unknown tool: drop_tables/)
      return (await c.listTools()).tools.map((t) => t.name)
    })
    const record = await recordOf("route = 'mcp:drop_tables'")
    const { cli: e, exit } = await explained('drop_tables', reporterToken, { text: false })
    expect(exit).toBe(1)
    expect(e.decision).toMatchObject({ effect: 'deny', status: record.status, code: record.code })
    expect(e.tool).toMatchObject({ kind: null, route: null, server: null, available: listed })
    expect(e.decision.reason).toContain(`The tools this caller may call (as tools/list lists them): ${listed.join(', ')}.`)
  })
})

describe('explain --tool usage', () => {
  it('refuses --tool with --method or --path, and a request without either, as usage errors', async () => {
    const both = await runCliInProcess(['explain', '--config', setup.gateway.file, '--tool', 'get_daily_report', '--method', 'GET', '--path', '/x'])
    expect(both).toMatchObject({ code: 2, stdout: '' })
    expect(both.stderr).toMatch(/give --tool \(an MCP tool call\) or --method and --path \(a request\), not both/)
    const neither = await runCliInProcess(['explain', '--config', setup.gateway.file])
    expect(neither.code).toBe(2)
    expect(neither.stderr).toMatch(/give --method and --path \(a request\), or --tool \(an MCP tool call\)/)
    const res = await request(`${setup.gateway.adminUrl}/api/explain`, {
      method: 'POST', headers: { authorization: `Bearer ${ADMIN}`, 'content-type': 'application/json' }, body: JSON.stringify({ tool: 'x', method: 'GET', path: '/x' }),
    })
    expect(res.statusCode).toBe(400)
    expect(JSON.stringify(await res.body.json())).toMatch(/give \\"tool\\" \(an MCP tool call\) or \\"method\\" and \\"path\\"/)
  })
})

describe('explain --tool and mcp.scopes', () => {
  it('refuses a token without the endpoint\'s scopes as the endpoint does (403 insufficient_scope), saying what the policies would decide', async () => {
    await setup.gateway.writeConfig({ ...config, mcp: { ...config.mcp, scopes: ['mcp:tools'] } })
    expect((await setup.gateway.reload()).ok).toBe(true)
    const res = await request(`${setup.gateway.url}/mcp`, {
      method: 'POST',
      headers: { authorization: `Bearer ${reporterToken}`, 'content-type': 'application/json', accept: 'application/json, text/event-stream' },
      body: JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'initialize', params: { protocolVersion: '2025-11-25', capabilities: {}, clientInfo: { name: 't', version: '1' } } }),
    })
    const body = (await res.body.json()) as { code: string; detail: string }
    expect(res.statusCode).toBe(403)
    expect(String(res.headers['www-authenticate'])).toContain('error="insufficient_scope"')

    const { cli: e, exit } = await explained('get_daily_report', reporterToken, { text: false })
    expect(exit).toBe(1)
    expect(e.decision).toMatchObject({ effect: 'deny', status: 403, code: body.code })
    expect(e.decision.reason).toBe(`403 policy_denied: ${body.detail} With a valid token, the endpoint would allow it (statement "ReporterTools").`)
  })
})

