// Approvals end to end: an agent's call to an approval-gated tool answers pending; approvers (a
// role in `approvers`, never the caller) decide through `bouncer approvals` or the admin API; the
// same call by the same caller with the same arguments then runs once before the ttl; denied and
// expired approvals are final; every step is in the audit log.
import { join } from 'node:path'
import { DatabaseSync } from 'node:sqlite'
import type { Client } from '@modelcontextprotocol/client'
import { request } from 'undici'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { openApiDocument } from '../../src/admin/openapi.ts'
import { runCliInProcess } from '../helpers/cli-in-process.ts'
import type { TestGateway } from '../helpers/gateway.ts'
import type { TestIdentityProvider } from '../helpers/identity-provider.ts'
import { auditRows, connect, MCP_RESOURCE, startMcpTestGateway, WITH_OPS_ONCALL, type McpTestSetup } from '../helpers/mcp.ts'
import type { TestUpstream } from '../helpers/upstream.ts'
import { waitFor } from '../helpers/wait.ts'

const ADMIN = 'approvals-test-admin-token-0123456789'
const READER = 'approvals-test-read-token-0123456789'
let setup: McpTestSetup
let idp: TestIdentityProvider
let upstream: TestUpstream
let gateway: TestGateway
let dir: string
let reporter: Client
let opsToken: string
let agentToken: string
let reporterApiToken: string

interface Pending { status: string; approval_id: string; expires_at: string }

beforeAll(async () => {
  setup = await startMcpTestGateway('mcp-approvals', (config) => {
    config.mcp.tools[1] = { ...config.mcp.tools[1]!, query: { region: { type: 'string' } } } as never
    config.roles.push({ name: 'ops', assumed_by: [{ issuer: 'corp-sso', subject: 'ops-oncall' }], policies: [] })
    const approvals = [
      { tools: ['list_*'], approvers: ['ops'], ttl: '15m' },
      { tools: ['get_daily_report'], approvers: ['ops'], ttl: '1s' },
    ]
    return { ...config, mcp: { ...config.mcp, approvals }, admin: { token: ADMIN, read_token: READER } }
  }, { idp: WITH_OPS_ONCALL })
  ;({ idp, upstream, gateway, dir } = setup)
  reporter = await connect(`${gateway.url}/mcp`, await idp.token('looker-reports', { resource: MCP_RESOURCE }), '2025-11-25')
  // Approvers sign in to the gateway's API (its audience), as people do.
  opsToken = await idp.token('ops-oncall')
  agentToken = await idp.token('analytics-agent')
  reporterApiToken = await idp.token('looker-reports')
}, 90_000)

afterAll(async () => {
  await reporter?.close()
  await setup?.close()
})

/** An admin API call, checked against the OpenAPI document's answers for it. */
async function admin(method: 'GET' | 'POST', path: string, body?: unknown, documented?: string, credential = ADMIN) {
  const res = await request(`${gateway.adminUrl}/api/${path}`, {
    method, headers: { authorization: `Bearer ${credential}`, 'content-type': 'application/json' }, body: body === undefined ? undefined : JSON.stringify(body),
  })
  const json = (await res.body.json()) as Record<string, unknown>
  if (documented) {
    const operation = (openApiDocument() as { paths: Record<string, Record<string, { responses: Record<string, unknown> }>> }).paths[documented]?.[method.toLowerCase()]
    expect(Object.keys(operation?.responses ?? {}), `${method} ${documented}`).toContain(String(res.statusCode))
  }
  return { status: res.statusCode, body: json }
}

async function call(name: string, args: Record<string, unknown>) {
  return reporter.callTool({ name, arguments: args })
}

const cli = (args: string[], token?: string) => runCliInProcess(['approvals', ...args, '--admin-url', gateway.adminUrl], { env: { BOUNCER_ADMIN_TOKEN: ADMIN, BOUNCER_APPROVER_TOKEN: token ?? '' } })

describe('approvals', () => {
  it('hold a gated call until an approver approves it; then it runs once', async () => {
    const first = await call('list_customers', { })
    const pending = first.structuredContent as unknown as Pending
    expect(pending).toMatchObject({ status: 'pending_approval', approval_id: expect.any(String), expires_at: expect.any(String) })
    expect(JSON.stringify(first.content)).toContain(pending.approval_id)
    expect(JSON.stringify(first.content)).toContain(`bouncer approvals approve ${pending.approval_id}`)
    expect(upstream.received).toHaveLength(0)
    // Asking again is the same approval, still pending.
    expect(((await call('list_customers', {})).structuredContent as unknown as Pending).approval_id).toBe(pending.approval_id)

    const listed = await admin('GET', 'approvals?status=pending', undefined, '/api/approvals')
    expect(listed.body).toMatchObject([{ id: pending.approval_id, tool: 'list_customers', subject: 'looker-reports', status: 'pending', approvers: ['ops'] }])
    expect((await admin('GET', 'approvals?status=bogus', undefined, '/api/approvals')).status).toBe(400)
    expect((await admin('GET', `approvals/${pending.approval_id}`, undefined, '/api/approvals/{id}')).body).toMatchObject({ status: 'pending' })
    expect((await admin('GET', 'approvals/nope', undefined, '/api/approvals/{id}')).status).toBe(404)
    const listedByCli = await cli(['list', '--status', 'pending'])
    expect(listedByCli.stdout).toContain(pending.approval_id)

    // Not the caller itself, not a role outside `approvers`, not without a token.
    expect(await admin('POST', `approvals/${pending.approval_id}/approve`, { token: reporterApiToken }, '/api/approvals/{id}/approve')).toMatchObject({ status: 403 })
    expect(await admin('POST', `approvals/${pending.approval_id}/approve`, { token: agentToken }, '/api/approvals/{id}/approve')).toMatchObject({ status: 403, body: { code: 'policy_denied' } })
    expect(await admin('POST', `approvals/${pending.approval_id}/approve`, {}, '/api/approvals/{id}/approve')).toMatchObject({ status: 401 })
    expect(await admin('POST', 'approvals/nope/approve', { token: opsToken }, '/api/approvals/{id}/approve')).toMatchObject({ status: 404 })
    // The read-only admin credential lists approvals but cannot decide one, whoever's token it carries.
    expect((await admin('GET', 'approvals?status=pending', undefined, '/api/approvals', READER)).status).toBe(200)
    expect(await admin('POST', `approvals/${pending.approval_id}/approve`, { token: opsToken }, '/api/approvals/{id}/approve', READER)).toMatchObject({ status: 403, body: { code: 'policy_denied' } })
    const withoutToken = await cli(['approve', pending.approval_id])
    expect(withoutToken.code).toBe(1)
    expect(withoutToken.stderr).toContain('BOUNCER_APPROVER_TOKEN')

    const approved = await cli(['approve', pending.approval_id], opsToken)
    expect(approved.stderr).toBe('')
    expect(approved.stdout).toContain('approved')
    expect(approved.stdout).toContain('decided by ops-oncall')

    // Other arguments are another call: a new approval, nothing run.
    const other = (await call('list_customers', { region: 'us' })).structuredContent as unknown as Pending
    expect(other.status).toBe('pending_approval')
    expect(other.approval_id).not.toBe(pending.approval_id)
    expect(upstream.received).toHaveLength(0)

    // The approved call runs, once.
    const ran = await call('list_customers', {})
    expect(ran.isError).toBe(false)
    expect((ran.structuredContent as { url: string }).url).toBe('/sales/customers')
    expect(upstream.received).toHaveLength(1)
    const again = (await call('list_customers', {})).structuredContent as unknown as Pending
    expect(again.status).toBe('pending_approval')
    expect(again.approval_id).not.toBe(pending.approval_id)
    expect(upstream.received).toHaveLength(1)
    expect((await admin('GET', `approvals/${pending.approval_id}`)).body).toMatchObject({ status: 'used', decided_by: expect.stringContaining('ops-oncall') })
    expect(await admin('POST', `approvals/${pending.approval_id}/approve`, { token: opsToken }, '/api/approvals/{id}/approve')).toMatchObject({ status: 400 })
  }, 60_000)

  it('refuses arguments the tool cannot take before filing an approval', async () => {
    // Found by a probe: the call was held for approval, and once approved it failed on its
    // arguments and had used the approval up.
    const pendingBefore = (await admin('GET', 'approvals?status=pending')).body as unknown as unknown[]
    await expect(call('list_customers', { colour: 'red' })).rejects.toThrow(/Invalid arguments for tool list_customers: unknown argument "colour"/)
    await expect(call('list_customers', { region: 7 })).rejects.toThrow(/Invalid arguments for tool list_customers/)
    expect((await admin('GET', 'approvals?status=pending')).body).toHaveLength(pendingBefore.length)
    expect(upstream.received).toHaveLength(1) // the first test's approved call only
    // Each refusal is audited, as the pipeline's 400s are.
    await waitFor(() => auditRows(join(dir, 'audit.db'), `tool = 'list_customers' AND status = 400 AND code = 'bad_request'`).length === 2, 'both refusals in the audit log', 20_000)
  }, 30_000)

  it('a denied approval is final', async () => {
    const pending = (await call('list_customers', { region: 'apac' })).structuredContent as unknown as Pending
    expect(await admin('POST', `approvals/${pending.approval_id}/deny`, { token: opsToken }, '/api/approvals/{id}/deny')).toMatchObject({ status: 200, body: { status: 'denied' } })
    expect(await admin('POST', `approvals/${pending.approval_id}/approve`, { token: opsToken }, '/api/approvals/{id}/approve')).toMatchObject({ status: 400 })
    const denied = await cli(['approve', pending.approval_id], opsToken)
    expect(denied.code).toBe(1)
    expect(denied.stderr).toContain('final')
    const next = (await call('list_customers', { region: 'apac' })).structuredContent as unknown as Pending
    expect(next.approval_id).not.toBe(pending.approval_id)
    expect(upstream.received.some((r) => r.url.includes('apac'))).toBe(false)
  }, 60_000)

  it('an expired approval is final', async () => {
    const pending = (await call('get_daily_report', { region: 'eu' })).structuredContent as unknown as Pending
    expect(pending.status).toBe('pending_approval')
    await waitFor(async () => (await admin('GET', `approvals/${pending.approval_id}`)).body.status === 'expired', 'the approval to expire', 20_000)
    expect(await admin('POST', `approvals/${pending.approval_id}/approve`, { token: opsToken }, '/api/approvals/{id}/approve')).toMatchObject({ status: 400 })
  }, 60_000)

  it('a store locked by another process holds only the gated call, which goes on once the lock is gone', async () => {
    await call('list_customers', { region: 'warm-up' }) // the store is open before the lock is taken
    // Another process's write transaction (another gateway sharing the file holds one while it writes).
    const other = new DatabaseSync(join(dir, 'approvals.db'))
    other.exec('BEGIN IMMEDIATE')
    let locked = true
    const gated = call('list_customers', { region: 'locked' }).finally(() => {
      locked = false
    })
    try {
      // Before: the call waited in SQLite's busy handler on the event loop's thread, and so did
      // every other request: this one answered only after the 5 s busy timeout.
      const probe = async (path: string) => {
        const started = performance.now()
        const res = await request(`${gateway.adminUrl}${path}`)
        const text = await res.body.text()
        expect(performance.now() - started, path).toBeLessThan(1_500)
        return text
      }
      // Until the call is in the gateway (it then reaches the store at once), and a few probes more.
      await waitFor(async () => /^bouncer_requests_in_flight [1-9]/m.test(await probe('/metrics')), 'the gated call in flight', 10_000)
      for (let i = 0; i < 3; i++) await probe('/healthz')
      expect(locked).toBe(true)
    } finally {
      other.exec('COMMIT')
      other.close()
    }
    expect(((await gated).structuredContent as unknown as Pending).status).toBe('pending_approval')
  }, 30_000)

  it('audits the pending call, the decision and the run', async () => {
    let rows: Record<string, unknown>[] = []
    await waitFor(() => (rows = auditRows(join(dir, 'audit.db'), `tool = 'list_customers'`)).some((r) => r.route === 'sales.customers'), 'the run', 20_000)
    const details = rows.map((r) => `${String(r.route)} ${String(r.status)} ${String(r.subject)} ${String(r.detail)}`)
    expect(details.some((d) => /^mcp:list_customers 202 looker-reports Approval \S+ pending/.test(d))).toBe(true)
    // Held, not run: a refusal with a code of its own (the console's denials said `deny:none`).
    expect(rows.find((r) => r.status === 202)).toMatchObject({ decision: 'deny', code: 'approval_pending' })
    expect(details.some((d) => /^mcp:list_customers 200 ops-oncall Approval \S+ approved for looker-reports/.test(d))).toBe(true)
    // The decision's record names the admin API request that made it, not the MCP endpoint.
    const approved = rows.find((r) => /approved for looker-reports/.test(String(r.detail)))
    expect(approved).toMatchObject({ method: 'POST', path: expect.stringMatching(/^\/api\/approvals\/[^/]+\/approve$/), source_ip: '127.0.0.1' })
    expect(details.some((d) => /^mcp:list_customers 200 ops-oncall Approval \S+ denied for looker-reports/.test(d))).toBe(true)
    expect(details.some((d) => /^sales.customers 200 looker-reports/.test(d))).toBe(true)
    expect(new Set(rows.map((r) => r.args_sha256)).size).toBeGreaterThan(1)
  }, 30_000)
})
