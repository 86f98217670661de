// Approvals of an aggregated server's tool: the call's arguments are checked against the input
// schema the server listed before an approval is filed or taken (a probe: a call the tool would
// refuse was held for an approver, and once approved it failed on its arguments and had used the
// approval up). Calls that need no approval go to the server as they are.
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import type { Client } from '@modelcontextprotocol/client'
import { request } from 'undici'
import { afterAll, beforeAll, expect, it } from 'vitest'
import { startTestGateway, type TestGateway } from '../helpers/gateway.ts'
import { DEFAULT_CLIENTS, startIdentityProvider, type TestIdentityProvider } from '../helpers/identity-provider.ts'
import { auditRows, connect, MCP_RESOURCE, mcpTestConfig } from '../helpers/mcp.ts'
import { startEverything, type RunningMcpServer } from '../helpers/mcp-servers.ts'
import { waitFor } from '../helpers/wait.ts'

const ADMIN = 'approvals-server-tools-admin-token-0123456789'
let idp: TestIdentityProvider
let everything: RunningMcpServer
let gateway: TestGateway
let dir: string
let reporter: Client

beforeAll(async () => {
  ;[idp, everything] = await Promise.all([
    startIdentityProvider({ clients: [...DEFAULT_CLIENTS, { clientId: 'ops-oncall', secret: 'ops-oncall-secret-0123456789abcd' }] }),
    startEverything(),
  ])
  dir = await mkdtemp(join(tmpdir(), 'bouncer-mcp-approvals-servers-'))
  const config = mcpTestConfig(idp.issuer, 'http://127.0.0.1:9', dir, {
    servers: [{ name: 'everything', url: everything.url }],
    approvals: [{ tools: ['everything__echo'], approvers: ['ops'], ttl: '15m' }],
  })
  config.roles.push({ name: 'ops', assumed_by: [{ issuer: 'corp-sso', subject: 'ops-oncall' }], policies: [] })
  gateway = await startTestGateway({ ...config, admin: { token: ADMIN } })
  await waitFor(() => gateway.state.runtime.issuerKeys.get('corp-sso')?.state === 'ready', 'keys', 20_000)
  reporter = await connect(`${gateway.url}/mcp`, await idp.token('looker-reports', { resource: MCP_RESOURCE }), '2025-11-25')
}, 90_000)

afterAll(async () => {
  await reporter?.close()
  await gateway?.close()
  await Promise.all([everything?.close(), idp?.stop()])
  if (dir) await rm(dir, { recursive: true, force: true })
})

async function pendingApprovals(): Promise<Array<{ tool: string }>> {
  const res = await request(`${gateway.adminUrl}/api/approvals?status=pending`, { headers: { authorization: `Bearer ${ADMIN}` } })
  return (await res.body.json()) as Array<{ tool: string }>
}

it('refuses a gated call whose arguments do not fit the tool\'s listed schema, before filing an approval', async () => {
  await expect(reporter.callTool({ name: 'everything__echo', arguments: { message: 7 } })).rejects.toThrow(/Invalid arguments for tool everything__echo: arguments\/message must be string/)
  await expect(reporter.callTool({ name: 'everything__echo', arguments: {} })).rejects.toThrow(/must have required property 'message'/)
  expect(await pendingApprovals()).toEqual([])
  await waitFor(() => auditRows(join(dir, 'audit.db'), `tool = 'everything__echo' AND status = 400 AND code = 'bad_request'`).length === 2, 'both refusals in the audit log', 20_000)

  // Arguments that fit are held for an approver, as before.
  const held = await reporter.callTool({ name: 'everything__echo', arguments: { message: 'hello' } })
  expect(held.structuredContent).toMatchObject({ status: 'pending_approval' })
  expect(await pendingApprovals()).toMatchObject([{ tool: 'everything__echo' }])
}, 60_000)

it('leaves a call that needs no approval for the server to answer', async () => {
  // Not gated: the server answers for its own arguments, as it would directly, and the gateway
  // audits its answer as the server's (allowed, the tool answered with an error).
  const answer = await reporter.callTool({ name: 'everything__get-sum', arguments: { a: 'one', b: 2 } })
  expect(answer.isError).toBe(true)
  expect(JSON.stringify(answer.content)).toContain('Input validation error: Invalid arguments for tool get-sum')
  await waitFor(() => auditRows(join(dir, 'audit.db'), `tool = 'everything__get-sum'`).length === 1, 'the call in the audit log', 20_000)
  expect(auditRows(join(dir, 'audit.db'), `tool = 'everything__get-sum'`)).toMatchObject([{ status: 200, decision: 'allow', detail: 'The tool answered with an error.' }])
})
