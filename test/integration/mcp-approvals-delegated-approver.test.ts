// An approval is decided by a person with their own token, never by an agent holding a token
// delegated by one: an agent that exchanged an ops user's token (scope ops) approved another
// agent's held call through the admin API, the person's approver role standing in for a person.
import { join } from 'node:path'
import { request } from 'undici'
import { afterAll, beforeAll, expect, it } from 'vitest'
import { exchange } from '../helpers/exchange.ts'
import { connect, MCP_RESOURCE, startMcpTestGateway, type McpTestSetup } from '../helpers/mcp.ts'

const ADMIN = 'delegated-approver-admin-token-0123456789'
let setup: McpTestSetup

beforeAll(async () => {
  setup = await startMcpTestGateway('mcp-approvals-delegated', (config, dir) => {
    const roles = config.roles as Array<{ name: string; assumed_by: object[]; policies: string[] }>
    // no-tenant is on the ops rota; looker-reports' service account may act for users with any of their roles.
    roles.push({ name: 'ops', assumed_by: [{ issuer: 'corp-sso', subject: 'no-tenant' }], policies: [] })
    return {
      ...config,
      admin: { token: ADMIN },
      mcp: { ...config.mcp, approvals: [{ tools: ['list_*'], approvers: ['ops'], ttl: '15m' }], approvals_store: { type: 'sqlite', path: join(dir, 'approvals.db') } },
      token_exchange: { issuer: 'https://mcp.bouncer.test', audiences: ['https://mcp.bouncer.test'], actors: [{ role: 'reporter', delegated_roles: ['*'] }] },
    }
  })
}, 60_000)

afterAll(async () => {
  await setup?.close()
})

it('refuses an approver token that an agent holds for a person', async () => {
  const client = await connect(`${setup.gateway.url}/mcp`, await setup.idp.token('looker-reports', { resource: MCP_RESOURCE }), '2025-11-25')
  let id: string
  try {
    const pending = (await client.callTool({ name: 'list_customers', arguments: {} })).structuredContent as { status: string; approval_id: string }
    expect(pending.status).toBe('pending_approval')
    id = pending.approval_id
  } finally {
    await client.close()
  }
  // The agent trades the ops person's token and its own for a token with the ops role.
  const { body: delegated } = await exchange(setup.gateway.url, { subject: await setup.idp.token('no-tenant'), actor: await setup.idp.token('looker-reports'), scope: 'ops' })
  expect(delegated.scope).toBe('ops')
  const decide = (token: string) => request(`${setup.gateway.adminUrl}/api/approvals/${id}/approve`, {
    method: 'POST', headers: { authorization: `Bearer ${ADMIN}`, 'content-type': 'application/json' }, body: JSON.stringify({ token }),
  })
  const refused = await decide(delegated.access_token as string)
  const text = await refused.body.text()
  expect(refused.statusCode, text).toBe(403)
  expect(text).toMatch(/approver's own token/)
  // The person, with their own token, decides.
  const approved = await decide(await setup.idp.token('no-tenant'))
  expect(approved.statusCode, await approved.body.text()).toBe(200)
}, 60_000)
