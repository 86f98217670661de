// Who may approve is mcp.approvals' `approvers`. A pending approval kept the approvers of the rule
// it was filed under: after a reload that took a role out of the rule (ops no longer approves these
// calls; security does), ops still approved the calls already waiting, and security could not —
// nor could the agent get a new approval, as its repeated call found the one still pending; and the
// admin API and console listed the old approvers.
import { request } from 'undici'
import { afterAll, beforeAll, expect, it } from 'vitest'
import { connect, MCP_RESOURCE, startMcpTestGateway, WITH_OPS_ONCALL, type McpTestSetup } from '../helpers/mcp.ts'

const ADMIN = 'approvers-reload-admin-token-0123456789'

let setup: McpTestSetup
let config: Record<string, unknown>

beforeAll(async () => {
  setup = await startMcpTestGateway('mcp-probe-approvers-reload', (base) => {
    base.roles.push(
      { name: 'ops', assumed_by: [{ issuer: 'corp-sso', subject: 'no-tenant' }], policies: [] },
      { name: 'security', assumed_by: [{ issuer: 'corp-sso', subject: 'ops-oncall' }], policies: [] },
    )
    config = { ...base, admin: { token: ADMIN }, mcp: { ...base.mcp, approvals: [{ tools: ['list_customers'], approvers: ['ops'], ttl: '15m' }] } }
    return config
  }, { idp: WITH_OPS_ONCALL })
}, 60_000)

afterAll(() => setup?.close())

async function decide(id: string, approver: string): Promise<{ status: number; body: string }> {
  const res = await request(`${setup.gateway.adminUrl}/api/approvals/${id}/approve`, {
    method: 'POST', headers: { authorization: `Bearer ${ADMIN}`, 'content-type': 'application/json' }, body: JSON.stringify({ token: await setup.idp.token(approver) }),
  })
  return { status: res.statusCode, body: await res.body.text() }
}

it('decides a pending approval by the approvers the rule names now, after a reload changed them', async () => {
  const reporter = await connect(`${setup.gateway.url}/mcp`, await setup.idp.token('looker-reports', { resource: MCP_RESOURCE }), '2025-11-25')
  try {
    const held = await reporter.callTool({ name: 'list_customers', arguments: {} })
    const id = (held.structuredContent as { approval_id: string }).approval_id
    expect(id).toBeTruthy()

    const mcp = config.mcp as Record<string, unknown>
    await setup.gateway.writeConfig({ ...config, mcp: { ...mcp, approvals: [{ tools: ['list_customers'], approvers: ['security'], ttl: '15m' }] } })
    expect((await setup.gateway.reload()).ok).toBe(true)

    // Who may approve, as the admin API (and the console's Catalog page) shows it.
    const listed = await request(`${setup.gateway.adminUrl}/api/approvals?status=pending`, { headers: { authorization: `Bearer ${ADMIN}` } })
    expect(((await listed.body.json()) as Array<{ id: string; approvers: string[] }>).find((a) => a.id === id)?.approvers).toEqual(['security'])
    const byOps = await decide(id, 'no-tenant')
    expect(byOps.status, byOps.body).toBe(403)
    expect(byOps.body).toContain('security')
    const bySecurity = await decide(id, 'ops-oncall')
    expect(bySecurity.status, bySecurity.body).toBe(200)
    expect(JSON.parse(bySecurity.body)).toMatchObject({ status: 'approved', approvers: ['security'] })
    const ran = await reporter.callTool({ name: 'list_customers', arguments: {} })
    expect(ran.isError).toBe(false)
  } finally {
    await reporter.close()
  }
}, 60_000)
