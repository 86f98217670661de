// An approval authorises a call that runs (mcp-approvals-unrun.test.ts). A server that refuses the
// call itself — a JSON-RPC error such as -32602 (invalid params: its own check of the arguments,
// stricter than the schema it listed) — never ran it, yet the approval was spent: the approver had
// to approve the same call again, and the agent was not told.
import { request } from 'undici'
import { ProtocolError, ProtocolErrorCode } from '@modelcontextprotocol/server'
import type { Client } from '@modelcontextprotocol/client'
import { afterAll, beforeAll, expect, it } from 'vitest'
import { connect, MCP_RESOURCE, startMcpTestGateway, type McpTestSetup } from '../helpers/mcp.ts'
import { startListedToolsServer, type ListedToolsServer } from '../helpers/mcp-servers.ts'

const ADMIN = 'approval-server-refusal-admin-0123456789'

let tickets: ListedToolsServer
let setup: McpTestSetup
let reporter: Client
let refuse = true

beforeAll(async () => {
  tickets = await startListedToolsServer([{ name: 'close_ticket', inputSchema: { type: 'object' } }], (name, args) => {
    if (refuse) throw new ProtocolError(ProtocolErrorCode.InvalidParams, `close_ticket needs "id" (got ${JSON.stringify(args)})`)
    return { content: [{ type: 'text', text: `${name} done` }] }
  })
  setup = await startMcpTestGateway('mcp-probe-approval-server-refusal', (config) => {
    config.roles.push({ name: 'ops', assumed_by: [{ issuer: 'corp-sso', subject: 'no-tenant' }], policies: [] })
    return {
      ...config,
      admin: { token: ADMIN },
      mcp: { ...config.mcp, servers: [{ name: 'tickets', url: tickets.url }], approvals: [{ tools: ['tickets__*'], approvers: ['ops'], ttl: '15m' }] },
    }
  })
  reporter = await connect(`${setup.gateway.url}/mcp`, await setup.idp.token('looker-reports', { resource: MCP_RESOURCE }), '2025-11-25')
}, 60_000)

afterAll(async () => {
  await reporter?.close()
  await setup?.close()
  await tickets?.close()
})

async function statusOf(id: string): Promise<string> {
  const res = await request(`${setup.gateway.adminUrl}/api/approvals/${id}`, { headers: { authorization: `Bearer ${ADMIN}` } })
  return ((await res.body.json()) as { status: string }).status
}

it('is not spent by a call its MCP server refuses with a JSON-RPC error, and the agent is told', async () => {
  const held = await reporter.callTool({ name: 'tickets__close_ticket', arguments: { ticket: 7 } })
  const id = (held.structuredContent as { approval_id: string }).approval_id
  const approved = await request(`${setup.gateway.adminUrl}/api/approvals/${id}/approve`, {
    method: 'POST', headers: { authorization: `Bearer ${ADMIN}`, 'content-type': 'application/json' }, body: JSON.stringify({ token: await setup.idp.token('no-tenant') }),
  })
  expect(approved.statusCode, await approved.body.text()).toBe(200)

  const refused = await reporter.callTool({ name: 'tickets__close_ticket', arguments: { ticket: 7 } }).catch((err: Error) => err)
  expect(tickets.calls).toEqual(['close_ticket'])
  expect(String(refused instanceof Error ? refused.message : JSON.stringify(refused))).toContain(`Approval ${id} was not used`)
  expect(await statusOf(id)).toBe('approved')

  // The same call, once the server takes it, runs on the same approval.
  refuse = false
  const ran = await reporter.callTool({ name: 'tickets__close_ticket', arguments: { ticket: 7 } })
  expect(ran.content).toEqual([{ type: 'text', text: 'close_ticket done' }])
  expect(await statusOf(id)).toBe('used')
}, 60_000)
