// Found by an adversarial probe (helper): approvals and 2025-era sessions were bound to the token's
// (iss, sub) only. For an exchanged token iss is the gateway, so the agent (act) and the user's own
// provider were not part of the binding: another agent acting for the same user took the first
// agent's approved call and used its MCP session, and so did the same sub at another provider.
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { request } from 'undici'
import { afterAll, beforeAll, expect, it } from 'vitest'
import { exchanged } from '../helpers/exchange.ts'
import { startTestGateway, type TestGateway } from '../helpers/gateway.ts'
import { AUDIENCE, DEFAULT_CLIENTS, startIdentityProvider, type TestIdentityProvider } from '../helpers/identity-provider.ts'
import { connect, MCP_RESOURCE, mcpTestConfig } from '../helpers/mcp.ts'
import { startUpstream, type TestUpstream } from '../helpers/upstream.ts'
import { waitFor } from '../helpers/wait.ts'

const ADMIN = 'actor-binding-admin-token-0123456789'
let idp: TestIdentityProvider
let partner: TestIdentityProvider
let upstream: TestUpstream
let gateway: TestGateway
let dir: string

beforeAll(async () => {
  ;[idp, upstream] = await Promise.all([
    startIdentityProvider({ clients: [...DEFAULT_CLIENTS,
      { clientId: 'ops-oncall', secret: 'ops-oncall-secret-0123456789abcd' },
      { clientId: 'rogue-agent', secret: 'rogue-agent-secret-0123456789abc' }] }),
    startUpstream(),
  ])
  partner = await startIdentityProvider({ clients: [{ clientId: 'looker-reports', secret: 'looker-reports-secret-0123456789' }] })
  dir = await mkdtemp(join(tmpdir(), 'bouncer-actor-binding-'))
  const config = mcpTestConfig(idp.issuer, upstream.url, dir, { approvals: [{ tools: ['list_*', 'get_*'], approvers: ['ops'], ttl: '15m' }] }) as {
    issuers: object[]
    roles: Array<{ name: string; assumed_by: object[]; policies: string[] }>
    policies: Array<{ statements: object[] }>
    token_exchange?: object
  }
  config.issuers.push({ name: 'partner-sso', issuer: partner.issuer, audiences: [AUDIENCE] })
  config.roles[1]!.assumed_by.push({ issuer: 'partner-sso', subject: 'looker-*' })
  config.roles.push({ name: 'ops', assumed_by: [{ issuer: 'corp-sso', subject: 'ops-oncall' }], policies: [] })
  config.roles.push({ name: 'agent2', assumed_by: [{ issuer: 'corp-sso', subject: 'rogue-agent' }], policies: ['reporter'] })
  // Both agents may call every tool and GET sales.*.
  config.policies[0]!.statements = [
    { sid: 'AgentTools', effect: 'allow', actions: ['call'], routes: ['mcp:*'] },
    { sid: 'AgentSales', effect: 'allow', actions: ['GET'], routes: ['sales.*'] },
  ]
  config.token_exchange = { issuer: 'https://mcp.bouncer.test', audiences: [MCP_RESOURCE], actors: [{ role: 'agent', delegated_roles: ['reporter'] }, { role: 'agent2', delegated_roles: ['reporter'] }] }
  gateway = await startTestGateway({ ...config, admin: { token: ADMIN } })
  await waitFor(() => gateway.state.runtime.issuerKeys.get('corp-sso')?.state === 'ready', 'keys', 20_000)
}, 90_000)

afterAll(async () => {
  await gateway?.close()
  await Promise.all([upstream?.close(), idp?.stop(), partner?.stop()])
  await rm(dir, { recursive: true, force: true })
})

async function exchangedFor(agentClient: string, user: () => TestIdentityProvider = () => idp): Promise<string> {
  return exchanged(gateway.url, { subject: await user().token('looker-reports'), actor: await idp.token(agentClient), resource: MCP_RESOURCE })
}

it('an approval one agent got for a user is not taken by another agent acting for the same user', async () => {
  const good = await connect(`${gateway.url}/mcp`, await exchangedFor('analytics-agent'), '2025-11-25')
  const rogue = await connect(`${gateway.url}/mcp`, await exchangedFor('rogue-agent'), '2025-11-25')
  try {
    const pending = (await good.callTool({ name: 'list_customers', arguments: {} })).structuredContent as { status: string; approval_id: string }
    expect(pending.status).toBe('pending_approval')
    const approved = await request(`${gateway.adminUrl}/api/approvals/${pending.approval_id}/approve`, {
      method: 'POST', headers: { authorization: `Bearer ${ADMIN}`, 'content-type': 'application/json' },
      body: JSON.stringify({ token: await idp.token('ops-oncall') }),
    })
    expect(approved.statusCode, await approved.body.text()).toBe(200)
    // The rogue agent repeats the call the approver approved for analytics-agent.
    const before = upstream.received.length
    const result = await rogue.callTool({ name: 'list_customers', arguments: {} })
    expect(upstream.received.length - before, JSON.stringify(result)).toBe(0)
    expect((result.structuredContent as { status?: string }).status).toBe('pending_approval')
    // And the approved call is still there for the agent it was approved for.
    const ran = await good.callTool({ name: 'list_customers', arguments: {} })
    expect(ran.isError).toBe(false)
    expect(upstream.received.length - before).toBe(1)
  } finally {
    await good.close()
    await rogue.close()
  }
}, 60_000)

it('a session opened by one agent for a user is not served to another agent acting for that user', async () => {
  const goodToken = await exchangedFor('analytics-agent')
  const rogueToken = await exchangedFor('rogue-agent')
  const init = await request(`${gateway.url}/mcp`, {
    method: 'POST',
    headers: { authorization: `Bearer ${goodToken}`, 'content-type': 'application/json', accept: 'application/json, text/event-stream' },
    body: JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'initialize', params: { protocolVersion: '2025-11-25', capabilities: {}, clientInfo: { name: 'x', version: '1' } } }),
  })
  await init.body.text()
  const session = init.headers['mcp-session-id'] as string
  expect(session).toBeTruthy()
  const res = await request(`${gateway.url}/mcp`, {
    method: 'POST',
    headers: { authorization: `Bearer ${rogueToken}`, 'content-type': 'application/json', accept: 'application/json, text/event-stream', 'mcp-session-id': session, 'mcp-protocol-version': '2025-11-25' },
    body: JSON.stringify({ jsonrpc: '2.0', id: 2, method: 'tools/list', params: {} }),
  })
  const text = await res.body.text()
  // sessions.ts: "a request with another identity's token gets 404".
  expect(res.statusCode, text).toBe(404)
})

it('an approval for one user is not taken by the same agent acting for another user (another provider, same sub)', async () => {
  const forCorp = await connect(`${gateway.url}/mcp`, await exchangedFor('analytics-agent'), '2025-11-25')
  const forPartner = await connect(`${gateway.url}/mcp`, await exchangedFor('analytics-agent', () => partner), '2025-11-25')
  try {
    const pending = (await forCorp.callTool({ name: 'get_daily_report', arguments: { region: 'corp-only' } })).structuredContent as { status: string; approval_id: string }
    expect(pending.status).toBe('pending_approval')
    const approved = await request(`${gateway.adminUrl}/api/approvals/${pending.approval_id}/approve`, {
      method: 'POST', headers: { authorization: `Bearer ${ADMIN}`, 'content-type': 'application/json' },
      body: JSON.stringify({ token: await idp.token('ops-oncall') }),
    })
    expect(approved.statusCode, await approved.body.text()).toBe(200)
    const before = upstream.received.length
    const result = await forPartner.callTool({ name: 'get_daily_report', arguments: { region: 'corp-only' } })
    expect(upstream.received.length - before, JSON.stringify(result)).toBe(0)
  } finally {
    await forCorp.close()
    await forPartner.close()
  }
}, 60_000)
