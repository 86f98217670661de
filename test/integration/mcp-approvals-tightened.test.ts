// An approval counts while the role that decided it is among the rule's approvers. Found by review:
// one decided by ops under approvers [ops, lead] still ran the call after a reload made them [lead]
// — a call let through on the word of someone the running config no longer trusts for the tool.
// The repeated call is held again (a new approval, the old one named); a reload that keeps the
// deciding role, or drops the rule, leaves the call as it was.
import { join } from 'node:path'
import { DatabaseSync } from 'node:sqlite'
import type { Client } from '@modelcontextprotocol/client'
import { request } from 'undici'
import { afterAll, beforeAll, expect, it } from 'vitest'
import { openApprovalStore } from '../../src/agents/mcp/approvals.ts'
import { runCliInProcess } from '../helpers/cli-in-process.ts'
import { auditRows, connect, MCP_RESOURCE, startMcpTestGateway, WITH_OPS_ONCALL, type McpTestSetup } from '../helpers/mcp.ts'
import { waitFor } from '../helpers/wait.ts'

const ADMIN = 'approvals-tightened-admin-token-0123456789'
// What GET /api/approvals answered before approvals recorded the deciding role: still all of it.
const FIELDS = ['actor', 'approvers', 'args_sha256', 'created_at', 'decided_at', 'decided_by', 'expires_at', 'id', 'issuer', 'status', 'subject', 'tool']

let setup: McpTestSetup
let config: Record<string, unknown>
let reporter: Client

interface Listed { id: string; status: string; approvers: string[]; decided_by: string | null }

beforeAll(async () => {
  setup = await startMcpTestGateway('mcp-approvals-tightened', (base) => {
    // no-tenant holds ops only; ops-oncall holds lead only; no one here holds security.
    base.roles.push(
      { name: 'ops', assumed_by: [{ issuer: 'corp-sso', subject: 'no-tenant' }], policies: [] },
      { name: 'lead', assumed_by: [{ issuer: 'corp-sso', subject: 'ops-oncall' }], policies: [] },
      { name: 'security', assumed_by: [{ issuer: 'corp-sso', subject: 'security-desk' }], policies: [] },
    )
    config = { ...base, admin: { token: ADMIN }, mcp: { ...base.mcp, approvals: [{ tools: ['list_customers'], approvers: ['ops', 'lead'], ttl: '15m' }] } }
    return config
  }, { idp: WITH_OPS_ONCALL })
  reporter = await connect(`${setup.gateway.url}/mcp`, await setup.idp.token('looker-reports', { resource: MCP_RESOURCE }), '2025-11-25')
}, 60_000)

afterAll(async () => {
  await reporter?.close()
  await setup?.close()
})

async function reloadWith(approvals: unknown[]): Promise<void> {
  await setup.gateway.writeConfig({ ...config, mcp: { ...(config.mcp as Record<string, unknown>), approvals } })
  const reloaded = await setup.gateway.reload()
  expect(reloaded.ok, JSON.stringify(reloaded)).toBe(true)
}

async function approve(id: string, approver: string): Promise<void> {
  const res = await request(`${setup.gateway.adminUrl}/api/approvals/${id}/approve`, {
    method: 'POST', headers: { authorization: `Bearer ${ADMIN}`, 'content-type': 'application/json' }, body: JSON.stringify({ token: await setup.idp.token(approver) }),
  })
  expect(res.statusCode, await res.body.text()).toBe(200)
}

async function listed(): Promise<Array<Listed & Record<string, unknown>>> {
  const res = await request(`${setup.gateway.adminUrl}/api/approvals`, { headers: { authorization: `Bearer ${ADMIN}` } })
  expect(res.statusCode).toBe(200)
  return (await res.body.json()) as Array<Listed & Record<string, unknown>>
}

const callList = () => reporter.callTool({ name: 'list_customers', arguments: {} })
const text = (result: Awaited<ReturnType<typeof callList>>) => (result.content as Array<{ text?: string }>).map((part) => part.text ?? '').join('\n')

it('holds the call again when the role that approved it is no longer among the approvers', async () => {
  const first = (await callList()).structuredContent as { status: string; approval_id: string }
  expect(first.status).toBe('pending_approval')
  await approve(first.approval_id, 'no-tenant') // ops

  await reloadWith([{ tools: ['list_customers'], approvers: ['lead'], ttl: '15m' }])
  const held = await callList()
  const again = held.structuredContent as { status: string; approval_id: string }
  expect(again.status, text(held)).toBe('pending_approval')
  expect(again.approval_id).not.toBe(first.approval_id)
  expect(text(held)).toContain(`Approval ${first.approval_id}, approved by no-tenant`)
  expect(text(held)).toContain('as ops, does not count: ops is not among this tool\'s approvers now')
  expect(text(held)).toContain('This call needs approval by lead')
  expect(setup.upstream.received).toHaveLength(0)

  // The listing: the ops-approved one still approved (not used), the new one waiting for lead; the same fields as before.
  const rows = await listed()
  expect(rows.find((row) => row.id === first.approval_id)).toMatchObject({ status: 'approved', approvers: ['lead'], decided_by: expect.stringContaining('no-tenant') })
  expect(rows.find((row) => row.id === again.approval_id)).toMatchObject({ status: 'pending', approvers: ['lead'], decided_by: null })
  for (const row of rows) expect(Object.keys(row).sort()).toEqual(FIELDS)
  const cli = await runCliInProcess(['approvals', 'list', '--status', 'approved', '--admin-url', setup.gateway.adminUrl], { env: { BOUNCER_ADMIN_TOKEN: ADMIN } })
  expect(cli.stdout).toContain(first.approval_id)
  expect(cli.stdout).toContain('approvers lead')
  // The audit record of the held call names the approval that did not count.
  await waitFor(() => auditRows(join(setup.dir, 'audit.db'), `tool = 'list_customers' AND code = 'approval_pending' AND detail LIKE '%${first.approval_id}, approved by%'`).length === 1, 'the held call\'s audit record', 20_000)

  // lead approves the new one: the call runs on it, once.
  await approve(again.approval_id, 'ops-oncall')
  const ran = await callList()
  expect(ran.isError, text(ran)).toBe(false)
  expect(setup.upstream.received).toHaveLength(1)
  const after = await listed()
  expect(after.find((row) => row.id === again.approval_id)?.status).toBe('used')
  expect(after.find((row) => row.id === first.approval_id)?.status).toBe('approved')
}, 60_000)

it('honours it while the rule still names the deciding role, and needs none once no rule holds the tool', async () => {
  const [earlier] = (await listed()).filter((row) => row.status === 'approved')
  expect(earlier).toBeDefined()
  const before = setup.upstream.received.length
  // Other approvers, ops among them: ops's approval counts again.
  await reloadWith([{ tools: ['list_customers'], approvers: ['ops', 'security'], ttl: '15m' }])
  const ran = await callList()
  expect(ran.isError, text(ran)).toBe(false)
  expect(setup.upstream.received).toHaveLength(before + 1)
  expect((await listed()).find((row) => row.id === earlier?.id)?.status).toBe('used')

  await reloadWith([])
  const free = await callList()
  expect(free.isError, text(free)).toBe(false)
  expect(setup.upstream.received).toHaveLength(before + 2)
}, 60_000)

it('honours an approval decided before the store kept the deciding roles, as before', async () => {
  // A store as the earlier version made it: no decided_roles column, one approval approved.
  const path = join(setup.dir, 'old-approvals.db')
  const old = new DatabaseSync(path)
  old.exec(`CREATE TABLE approvals (id TEXT PRIMARY KEY, tool TEXT NOT NULL, issuer TEXT NOT NULL, subject TEXT NOT NULL, args_sha256 TEXT NOT NULL,
    approvers TEXT NOT NULL, status TEXT NOT NULL, created_at INTEGER NOT NULL, expires_at INTEGER NOT NULL, decided_by TEXT, decided_at INTEGER, actor TEXT)`)
  const now = Date.now()
  old.prepare(`INSERT INTO approvals VALUES ('old-1', 't', 'iss', 'sub', 'digest', '["ops"]', 'approved', ?, ?, 'someone (iss)', ?, NULL)`).run(now, now + 60_000, now)
  old.close()
  const store = openApprovalStore(path)
  try {
    const call = { tool: 't', issuer: 'iss', subject: 'sub', actor: null, argsSha256: 'digest', approvers: ['lead'] }
    expect(await store.take(call)).toMatchObject({ approval: { id: 'old-1', status: 'used' }, untrusted: null })
  } finally {
    store.close()
  }
})
