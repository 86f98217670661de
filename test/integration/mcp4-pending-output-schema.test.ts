// A call held for approval of an aggregated server's tool that declares an outputSchema: the
// pending answer's structuredContent ({status, approval_id, expires_at}) is not the tool's output,
// and MCP clients check a tool's structured answer against its outputSchema. The official SDK threw
// "Structured content does not match the tool's output schema" at the agent, which never saw the
// approval id nor what to do (a probe); leaving structuredContent out is refused too ("has an output
// schema but did not return structured content"). Such a tool's pending answer is an error result,
// its text the same pending JSON and sentence; once approved, the call runs and answers as the tool.
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import type { Client } from '@modelcontextprotocol/client'
import { request } from 'undici'
import { afterAll, beforeAll, expect, it } from 'vitest'
import { startTestGateway, type TestGateway } from '../helpers/gateway.ts'
import { DEFAULT_CLIENTS, startIdentityProvider, type TestIdentityProvider } from '../helpers/identity-provider.ts'
import { connect, MCP_RESOURCE, mcpTestConfig } from '../helpers/mcp.ts'
import { startEverything, type RunningMcpServer } from '../helpers/mcp-servers.ts'
import { waitFor } from '../helpers/wait.ts'

let idp: TestIdentityProvider
let everything: RunningMcpServer
let gateway: TestGateway
let dir: string
let reporter: Client
const ADMIN = 'mcp4-pending-output-admin-token-0123456789'

beforeAll(async () => {
  ;[idp, everything] = await Promise.all([startIdentityProvider({ clients: [...DEFAULT_CLIENTS, { clientId: 'ops-oncall', secret: 'ops-oncall-secret-0123456789abcd' }] }), startEverything()])
  dir = await mkdtemp(join(tmpdir(), 'bouncer-mcp4-pending-output-'))
  const config = mcpTestConfig(idp.issuer, 'http://127.0.0.1:9', dir, {
    servers: [{ name: 'everything', url: everything.url }],
    approvals: [{ tools: ['everything__*structured*'], approvers: ['ops'], ttl: '15m' }],
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

it('tells the agent its call is pending, and runs it once approved, for a tool with an outputSchema', async () => {
  const tool = 'everything__get-structured-content'
  expect((await reporter.listTools()).tools.find((t) => t.name === tool)?.outputSchema).toBeDefined()
  const held = await reporter.callTool({ name: tool, arguments: { location: 'Chicago' } })
  expect(held.isError).toBe(true)
  expect(held.structuredContent).toBeUndefined()
  const text = (held.content as Array<{ type: string; text: string }>)[0]?.text ?? ''
  const pending = JSON.parse(text.split('\n')[0] as string) as { status: string; approval_id: string }
  expect(pending.status).toBe('pending_approval')
  expect(text).toContain('needs approval by ops')

  const approved = await request(`${gateway.adminUrl}/api/approvals/${pending.approval_id}/approve`, {
    method: 'POST', headers: { authorization: `Bearer ${ADMIN}`, 'content-type': 'application/json' },
    body: JSON.stringify({ token: await idp.token('ops-oncall') }),
  })
  expect(approved.statusCode).toBe(200)
  await approved.body.dump()
  const ran = await reporter.callTool({ name: tool, arguments: { location: 'Chicago' } })
  expect(ran.isError).toBeFalsy()
  expect(ran.structuredContent).toMatchObject({ temperature: expect.any(Number), conditions: expect.any(String) })
}, 60_000)
