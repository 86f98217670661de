// Found by an adversarial probe (helper): the four-eyes check compared the approver with the approval's subject
// only, so on an on-behalf-of call (an exchanged token: sub the user, act the agent) the agent that made the
// call approved it with its own client-credentials token, where its service account held an approver role.
import { request } from 'undici'
import { afterAll, beforeAll, expect, it } from 'vitest'
import { exchanged as exchangedAt } from '../helpers/exchange.ts'
import type { TestGateway } from '../helpers/gateway.ts'
import type { TestIdentityProvider } from '../helpers/identity-provider.ts'
import { AGENT_FOR_REPORTER, connect, MCP_RESOURCE, startMcpTestGateway, type McpTestSetup } from '../helpers/mcp.ts'
import type { TestUpstream } from '../helpers/upstream.ts'

const ADMIN = 'scratch-four-eyes-admin-token-0123456789'
let setup: McpTestSetup
let idp: TestIdentityProvider
let upstream: TestUpstream
let gateway: TestGateway

beforeAll(async () => {
  setup = await startMcpTestGateway('mcp-approvals-four-eyes', (base) => {
    const config = { ...base, mcp: { ...base.mcp, approvals: [{ tools: ['list_*'], approvers: ['ops'], ttl: '15m' }] } } as typeof base & {
      roles: Array<{ name: string; assumed_by: object[]; policies: string[] }>
      policies: Array<{ statements: object[] }>
    }
    config.policies[0]!.statements = [
      { sid: 'AgentTools', effect: 'allow', actions: ['call'], routes: ['mcp:*'] },
      { sid: 'AgentSales', effect: 'allow', actions: ['GET'], routes: ['sales.*'] },
    ]
    // The agent's service account is also on the ops rota (an automation that approves routine calls).
    config.roles.push({ name: 'ops', assumed_by: [{ issuer: 'corp-sso', subject: 'analytics-agent' }], policies: [] })
    return { ...config, token_exchange: AGENT_FOR_REPORTER, admin: { token: ADMIN } }
  })
  ;({ idp, upstream, gateway } = setup)
}, 90_000)

afterAll(() => setup?.close())

async function exchanged(): Promise<string> {
  return exchangedAt(gateway.url, { subject: await idp.token('looker-reports'), actor: await idp.token('analytics-agent'), resource: MCP_RESOURCE })
}

it('the agent that made an on-behalf-of tool call cannot approve it with its own token (four eyes)', async () => {
  const client = await connect(`${gateway.url}/mcp`, await exchanged(), '2025-11-25')
  try {
    const pending = (await client.callTool({ name: 'list_customers', arguments: {} })).structuredContent as { status: string; approval_id: string }
    expect(pending.status).toBe('pending_approval')
    const listed = await request(`${gateway.adminUrl}/api/approvals/${pending.approval_id}`, { headers: { authorization: `Bearer ${ADMIN}` } })
    const approval = (await listed.body.json()) as { subject: string; actor: string | null }
    expect(approval.subject).toBe('looker-reports')
    expect(approval.actor).toMatch(/ analytics-agent$/)
    // The same agent, with its own client-credentials token, decides its own call.
    const res = await request(`${gateway.adminUrl}/api/approvals/${pending.approval_id}/approve`, {
      method: 'POST', headers: { authorization: `Bearer ${ADMIN}`, 'content-type': 'application/json' },
      body: JSON.stringify({ token: await idp.token('analytics-agent') }),
    })
    const text = await res.body.text()
    expect(res.statusCode, text).toBe(403)
    expect(text).toMatch(/own tool call/)
    // And the call does not run.
    const before = upstream.received.length
    await client.callTool({ name: 'list_customers', arguments: {} })
    expect(upstream.received.length - before).toBe(0)
  } finally {
    await client.close()
  }
}, 60_000)
