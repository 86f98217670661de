// The console's decision trace and Denials page explain a recorded request again under the running
// config. A record keeps the identity's issuer, subject and client and the roles the gateway
// assumed, not the token's other claims: a probe found the trace and the denials answering "allow
// by ReadSales" beside a recorded 403 (a deny statement on a claim), "403 no_role" for a role granted
// on a claim, and "401 claim_missing" for an issuer's required claim. The recorded decision comes
// first, the explanation uses the recorded roles, and where it still cannot agree it says why.
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import type { Client } from '@modelcontextprotocol/client'
import type { Browser } from 'playwright-core'
import { request } from 'undici'
import { stringify } from 'yaml'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { ExplainedDenial, ReplayResult, Trace } from '../../src/admin/console-shapes.ts'
import type { AuditRecord } from '../../src/audit/fields.ts'
import type { Verdict } from '../../src/gateway/explanation-shapes.ts'
import { closeAll, collectPageErrors, launchChromium, openPage, showPage, signInWithToken, waitForAuditRecords } from '../helpers/browser.ts'
import { startTestGateway, withDefaults, type TestGateway } from '../helpers/gateway.ts'
import { AUDIENCE, startIdentityProvider, type TestIdentityProvider } from '../helpers/identity-provider.ts'
import { auditRows, connect, MCP_RESOURCE, startMcpTestGateway, type McpTestSetup } from '../helpers/mcp.ts'
import { startUpstream, type TestUpstream } from '../helpers/upstream.ts'
import { waitFor } from '../helpers/wait.ts'

const ADMIN_TOKEN = 'console-explain-admin-token-0123456789'

let idpA: TestIdentityProvider
let idpB: TestIdentityProvider
let upstream: TestUpstream
let gateway: TestGateway
let dir: string

/** `keysOnly`: sales.daily takes API keys only, refusing the bearer tokens its requests were recorded with. */
function config(options: { extra: boolean; keysOnly?: boolean }): Record<string, unknown> {
  return {
    admin: { token: ADMIN_TOKEN },
    api_keys: { store: { type: 'sqlite', path: join(dir, 'keys.db') } },
    audit: { sinks: [{ type: 'sqlite', path: join(dir, 'audit.db') }], flush_interval: '10ms', spill_dir: join(dir, 'spill') },
    telemetry: { log_level: 'silent' },
    issuers: [
      { name: 'idp-a', issuer: idpA.issuer, audiences: [AUDIENCE] },
      { name: 'idp-b', issuer: idpB.issuer, audiences: [AUDIENCE], required_claims: ['tenant'] },
    ],
    roles: [
      { name: 'reader', assumed_by: [{ issuer: 'idp-a', subject: 'svc-*' }], policies: ['read-sales'] },
      ...(options.extra ? [{ name: 'extra', assumed_by: [{ issuer: 'idp-a', subject: 'svc-*' }], policies: ['extra-no-eu'] }] : []),
      { name: 'tenant-reader', assumed_by: [{ issuer: 'idp-a', subject: 'acct-*', claims: { tenant: 'acme' } }], policies: ['read-sales', 'no-pii'] },
      { name: 'b-reader', assumed_by: [{ issuer: 'idp-b', subject: 'b-*' }], policies: ['read-sales', 'no-pii'] },
    ],
    policies: [
      { name: 'read-sales', statements: [{ sid: 'ReadSales', effect: 'allow', actions: ['GET'], routes: ['sales.*'] }] },
      ...(options.extra ? [{ name: 'extra-no-eu', statements: [{ sid: 'ExtraNoEU', effect: 'deny', actions: ['GET'], routes: ['sales.daily'], conditions: { claims: { region: 'eu' } } }] }] : []),
      { name: 'no-pii', statements: [{ sid: 'NoPII', effect: 'deny', actions: ['*'], routes: ['sales.customers'] }] },
    ],
    upstreams: [{ name: 'sales-api', url: upstream.url }],
    routes: [
      { id: 'sales.daily', methods: ['GET'], path: '/sales/daily/:region', upstream: 'sales-api', ...(options.keysOnly ? { accept: ['api_key'] } : {}) },
      { id: 'sales.customers', methods: ['GET'], path: '/sales/customers', upstream: 'sales-api' },
    ],
  }
}

async function get(path: string, token?: string): Promise<number> {
  const res = await request(`${gateway.url}${path}`, { headers: token ? { authorization: `Bearer ${token}` } : {} })
  await res.body.dump()
  return res.statusCode
}

async function replayDraft(draft: Record<string, unknown>): Promise<ReplayResult> {
  const res = await request(`${gateway.adminUrl}/api/replay`, {
    method: 'POST',
    headers: { authorization: `Bearer ${ADMIN_TOKEN}`, 'content-type': 'application/json' },
    body: JSON.stringify({ config: stringify(withDefaults(draft, dir)), hours: 1 }),
  })
  const body = (await res.body.json()) as ReplayResult
  expect(res.statusCode, JSON.stringify(body)).toBe(200)
  return body
}

async function admin<T>(path: string, method: 'GET' | 'POST' = 'GET'): Promise<T> {
  const res = await request(`${gateway.adminUrl}/api/${path}`, { method, headers: { authorization: `Bearer ${ADMIN_TOKEN}` } })
  const body = (await res.body.json()) as T
  expect(res.statusCode, JSON.stringify(body)).toBe(200)
  return body
}

async function recordOf(path: string, subject: string | null): Promise<AuditRecord> {
  const { records } = await admin<{ records: AuditRecord[] }>('audit/page?since=15m&limit=200')
  const record = records.find((r) => r.path === path && r.subject === subject)
  if (!record) throw new Error(`no record of ${path} by ${subject}`)
  return record
}

async function traceOf(path: string, subject: string | null): Promise<Trace> {
  const record = await recordOf(path, subject)
  return admin<Trace>(`audit/trace?id=${encodeURIComponent(record.id)}&time=${encodeURIComponent(record.time)}`)
}

/** The one rule the probe asked for: a verdict unlike the recorded one comes with a flag saying why. */
function expectNoSilentContradiction(recorded: { status: number; code: string | null; statement: string | null }, verdict: Verdict, under: Trace['explained_under']): void {
  const same = verdict.status === recorded.status && verdict.code === recorded.code && verdict.statement === recorded.statement
  if (!same) {
    expect(under.agrees, `${JSON.stringify(verdict)} beside ${JSON.stringify(recorded)}`).toBe(false)
    expect(under.disagrees).toEqual(expect.any(String))
  } else {
    expect(under.agrees).toBe(true)
    expect(under.disagrees).toBeNull()
  }
}

beforeAll(async () => {
  idpA = await startIdentityProvider()
  idpB = await startIdentityProvider()
  upstream = await startUpstream()
  dir = await mkdtemp(join(tmpdir(), 'bouncer-console-explain-'))
  gateway = await startTestGateway(config({ extra: true }))
  await waitFor(() => ['idp-a', 'idp-b'].every((name) => gateway.state.runtime.issuerKeys.get(name)?.state === 'ready'), 'the issuer keys', 20_000)
  const statuses = [
    await get('/sales/daily/eu', await idpA.mint({ sub: 'svc-trace', region: 'eu' })), // ExtraNoEU: a deny on a claim
    await get('/sales/daily/us', await idpA.mint({ sub: 'svc-us', region: 'us' })), // allowed by ReadSales
    await get('/sales/customers', await idpA.mint({ sub: 'acct-1', tenant: 'acme' })), // NoPII, the role granted on a claim
    await get('/sales/customers', await idpB.mint({ sub: 'b-1', tenant: 'acme' })), // NoPII, the issuer requires tenant
    await get('/sales/daily/eu', await idpA.mint({ sub: 'acct-2', tenant: 'other' })), // no role
    await get('/sales/daily/eu'), // no token
  ]
  expect(statuses).toEqual([403, 200, 403, 403, 403, 401])
  await waitForAuditRecords(gateway.adminUrl, ADMIN_TOKEN, statuses.length)
}, 120_000)

afterAll(() => closeAll(browser, gateway, upstream, idpA, idpB, () => rm(dir, { recursive: true, force: true })))

/** One chromium for the file's two browser tests, launched by the first of them that runs. */
let browser: Browser | undefined
async function theBrowser(): Promise<Browser> {
  browser ??= await launchChromium()
  return browser
}

describe('the decision trace of a recorded request', () => {
  it('puts the recorded decision first, and flags an explanation that a claim the record does not keep turns around', async () => {
    const trace = await traceOf('/sales/daily/eu', 'svc-trace')
    expect(Object.keys(trace)[0]).toBe('recorded')
    expect(trace.recorded).toEqual({
      decision: 'deny', status: 403, code: 'policy_denied', statement: 'ExtraNoEU',
      detail: expect.stringMatching(/^Statement "ExtraNoEU"/), roles: ['reader', 'extra'],
    })
    expect(trace.explained_under).toMatchObject({ config: 'running', generation: gateway.state.runtime.generation, sha256: gateway.state.runtime.configDigest, roles_from: 'record', agrees: false })
    // Explained with the roles the gateway assumed: ExtraNoEU is among the statements, not matching for want of the claim.
    expect(trace.explanation.statements.find((s) => s.sid === 'ExtraNoEU')).toMatchObject({ matched: false, why: expect.stringMatching(/claim region is missing.*not recorded|record does not keep/) })
    expect(trace.explained_under.disagrees).toMatch(/ExtraNoEU/)
    expect(trace.explained_under.disagrees).toMatch(/claim region/)
    expect(trace.explained_under.because).toEqual(['claims_not_recorded'])
    expect(trace.explained_under.caveats.join(' ')).toMatch(/region/)
    expectNoSilentContradiction(trace.recorded, trace.explanation.decision, trace.explained_under)
  })

  it('explains a role granted on a claim with the recorded roles, not as no_role', async () => {
    const trace = await traceOf('/sales/customers', 'acct-1')
    expect(trace.recorded).toMatchObject({ status: 403, code: 'policy_denied', statement: 'NoPII', roles: ['tenant-reader'] })
    expect(trace.explanation.decision).toMatchObject({ effect: 'deny', status: 403, code: 'policy_denied', statement: 'NoPII' })
    expect(trace.explained_under).toMatchObject({ roles_from: 'record', agrees: true, disagrees: null, because: [] })
    expect(trace.explanation.roles.find((r) => r.role === 'tenant-reader')).toMatchObject({ held: true })
    // Its trust rule reads tenant, which the record does not keep: said, not hidden.
    expect(trace.explained_under.caveats.join(' ')).toMatch(/tenant/)
    expectNoSilentContradiction(trace.recorded, trace.explanation.decision, trace.explained_under)
  })

  it('explains an authenticated 403 of an issuer with required claims as the 403 it was, not 401 claim_missing', async () => {
    const trace = await traceOf('/sales/customers', 'b-1')
    expect(trace.recorded).toMatchObject({ status: 403, code: 'policy_denied', statement: 'NoPII', roles: ['b-reader'] })
    expect(trace.explanation.decision).toMatchObject({ effect: 'deny', status: 403, code: 'policy_denied', statement: 'NoPII' })
    expect(trace.explanation.identity?.problems).toEqual([])
    expect(trace.explained_under).toMatchObject({ roles_from: 'record', agrees: true })
    expect(trace.explained_under.caveats.join(' ')).toMatch(/requires the claim tenant/)
  })

  it('agrees where the record and the running config do: an allow, a no_role, a missing token', async () => {
    for (const [path, subject, code] of [['/sales/daily/us', 'svc-us', null], ['/sales/daily/eu', 'acct-2', 'no_role'], ['/sales/daily/eu', null, 'missing_token']] as const) {
      const trace = await traceOf(path, subject)
      expect(trace.recorded.code).toBe(code)
      expect(trace.explanation.decision.code).toBe(code)
      expect(trace.explained_under.agrees, `${path} ${subject}`).toBe(true)
    }
  })
})

describe('the Denials page', () => {
  it('heads each group with its recorded code and statement, and never answers allow beside a 403 without saying why', async () => {
    const groups = await admin<ExplainedDenial[]>('denials?since=15m')
    const of = (principal: string | null) => groups.find((g) => g.principal === principal) as ExplainedDenial
    expect(groups.map((g) => g.principal).sort()).toEqual(['acct-1', 'acct-2', 'b-1', 'svc-trace', null].sort())

    const eu = of('svc-trace')
    expect(Object.keys(eu)[0]).toBe('recorded')
    expect(eu.recorded).toMatchObject({ status: 403, code: 'policy_denied', statement: 'ExtraNoEU', roles: ['reader', 'extra'] })
    expect(eu.headline).toBe('403 policy_denied (statement ExtraNoEU)')
    expect(eu.explained_under).toMatchObject({ roles_from: 'record', agrees: false, because: ['claims_not_recorded'] })
    expect(eu.explained_under.disagrees).toMatch(/ExtraNoEU[\s\S]*claim region/)

    for (const principal of ['acct-1', 'b-1']) {
      expect(of(principal).explanation, principal).toMatchObject({ effect: 'deny', status: 403, code: 'policy_denied', statement: 'NoPII' })
      expect(of(principal).explained_under.agrees, principal).toBe(true)
    }
    expect(of('acct-2').explanation).toMatchObject({ status: 403, code: 'no_role' })
    expect(of(null).explanation).toMatchObject({ status: 401, code: 'missing_token' })
    for (const g of groups) expectNoSilentContradiction(g.recorded, g.explanation, g.explained_under)
  })
})

describe('the console in a browser', () => {
  it('shows the disagreement and why beside the trace and the denial', { timeout: 120_000 }, async () => {
    const browser = await theBrowser()
    const errors: string[] = []
    const { context, page } = await openPage(browser, { viewport: { width: 1280, height: 800 } })
    collectPageErrors(page, errors)
    try {
      await signInWithToken(page, gateway.adminUrl, ADMIN_TOKEN)
      await showPage(page, gateway.adminUrl, 'requests?principal=svc-trace')
      await page.locator('[data-testid=row]').first().click()
      const trace = page.locator('[data-testid=trace]')
      await expect.poll(() => trace.innerText()).toMatch(/403 deny/)
      expect(await trace.locator('[data-testid=disagrees]').innerText()).toMatch(/ExtraNoEU[\s\S]*region/)

      await showPage(page, gateway.adminUrl, 'denials?since=1h')
      const group = page.locator('[data-testid=denial]', { hasText: 'svc-trace' })
      expect(await group.innerText()).toMatch(/policy_denied[\s\S]*ExtraNoEU/)
      expect(await group.locator('[data-testid=disagrees]').innerText()).toMatch(/region/)
      expect(await page.locator('[data-testid=denial]', { hasText: 'b-1' }).locator('[data-testid=disagrees]').count()).toBe(0)
      expect(errors).toEqual([])
    } finally {
      await context.close()
    }
  })
})

describe('replay', () => {
  it('decides the requests of an issuer with required claims again, rather than as 401 claim_missing both times', async () => {
    const draft = config({ extra: true }) as { policies: Array<{ name: string; statements: Array<Record<string, unknown>> }> }
    const noPii = draft.policies.find((p) => p.name === 'no-pii') as { statements: Array<Record<string, unknown>> }
    noPii.statements = [{ sid: 'PIIAllowed', effect: 'allow', actions: ['GET'], routes: ['sales.customers'] }]
    const body = await replayDraft(draft)
    const changes = body.ok ? body.changes : []
    expect(changes.find((c) => c.principal === 'b-1')).toMatchObject({ before: { code: 'policy_denied', statement: 'NoPII' }, after: { effect: 'allow' } })
  })

  it('lists the requests a draft that narrows a route\'s accept would refuse, rather than "no change" from the policies alone', async () => {
    const body = await replayDraft(config({ extra: true, keysOnly: true }))
    const changes = body.ok ? body.changes : []
    expect(changes.find((c) => c.principal === 'svc-us' && c.path === '/sales/daily/us')).toMatchObject({
      last: { status: 200, decision: 'allow' },
      before: { effect: 'allow', statement: 'ReadSales' },
      after: { effect: 'deny', status: 401, code: 'missing_token', reason: expect.stringMatching(/does not accept \(accept: api_key\)/) },
    })
    // The route whose accept is unchanged is not listed.
    expect(changes.filter((c) => c.path === '/sales/customers')).toEqual([])
  })
})

describe('after a reload that drops a role', () => {
  it('says the config changed since, rather than answering allow beside the recorded 403', async () => {
    await gateway.writeConfig(config({ extra: false }))
    await admin('reload', 'POST')
    const trace = await traceOf('/sales/daily/eu', 'svc-trace')
    expect(trace.recorded).toMatchObject({ code: 'policy_denied', statement: 'ExtraNoEU', roles: ['reader', 'extra'] })
    expect(trace.explanation.decision).toMatchObject({ effect: 'allow', statement: 'ReadSales' })
    expect(trace.explained_under.agrees).toBe(false)
    expect(trace.explained_under.because).toContain('config_changed')
    expect(trace.explained_under.disagrees).toMatch(/role "extra" is not in the running config/)
  })
})

describe('after a reload that narrows a route\'s accept', () => {
  it('explains a request recorded with a credential the route no longer takes as the 401 it would be now, and says why', async () => {
    await gateway.writeConfig(config({ extra: false, keysOnly: true }))
    await admin('reload', 'POST')
    const trace = await traceOf('/sales/daily/us', 'svc-us')
    expect(trace.recorded).toMatchObject({ decision: 'allow', status: 200, statement: 'ReadSales', roles: ['reader', 'extra'] })
    expect(trace.explanation.decision).toMatchObject({ effect: 'deny', status: 401, code: 'missing_token', statement: null })
    expect(trace.explanation.decision.reason).toMatch(/does not accept \(accept: api_key\)/)
    expect(trace.explained_under).toMatchObject({ agrees: false, because: ['config_changed'] })
    expect(trace.explained_under.disagrees).toMatch(/^The record says allowed \(200\) by statement "ReadSales"; explained under the running config, it would be 401 missing_token: the running config refuses the credential the gateway took then \(This route needs an API key/)
    expectNoSilentContradiction(trace.recorded, trace.explanation.decision, trace.explained_under)

    // A recorded denial on that route, too; a request that carried nothing is the 401 it was.
    const denied = await traceOf('/sales/daily/eu', 'svc-trace')
    expect(denied.explanation.decision).toMatchObject({ status: 401, code: 'missing_token' })
    expect(denied.explained_under.agrees).toBe(false)
    const anonymous = await traceOf('/sales/daily/eu', null)
    expect(anonymous.explanation.decision).toMatchObject({ status: 401, code: 'missing_token' })
    expect(anonymous.explained_under.agrees).toBe(true)

    const groups = await admin<ExplainedDenial[]>('denials?since=15m')
    const eu = groups.find((g) => g.principal === 'svc-trace') as ExplainedDenial
    expect(eu.explanation).toMatchObject({ effect: 'deny', status: 401, code: 'missing_token' })
    expect(eu.explained_under).toMatchObject({ agrees: false, because: ['config_changed'] })
    for (const g of groups) expectNoSilentContradiction(g.recorded, g.explanation, g.explained_under)
  })
})

// Found walking the quick start's console: an agent's refused tool call and its call held for
// approval are recorded as the MCP endpoint's POST /mcp with the route mcp:<tool>. Explained again
// as that POST, they read "Now: would be allowed", flagged "route builtin/mcp is public now" — a
// change nobody made, beside a tool the agent was refused. They were then shown as recorded, not
// decided again; now they are decided again as tools/call decides them (explain's tool mode: the
// action call on mcp:<tool>, and a route tool's route for its method), from the recorded identity and roles.
describe('a tool call refused or held at the MCP endpoint', () => {
  const MCP_ADMIN_TOKEN = 'console-explain-mcp-admin-token-0123456789'
  let setup: McpTestSetup
  let agent: Client
  let approvalId: string

  async function mcpAdmin<T>(path: string): Promise<T> {
    const res = await request(`${setup.gateway.adminUrl}/api/${path}`, { headers: { authorization: `Bearer ${MCP_ADMIN_TOKEN}` } })
    const body = (await res.body.json()) as T
    expect(res.statusCode, JSON.stringify(body)).toBe(200)
    return body
  }

  beforeAll(async () => {
    setup = await startMcpTestGateway('console-explain-mcp', (base) => ({
      ...base, admin: { token: MCP_ADMIN_TOKEN }, telemetry: { log_level: 'silent' },
      mcp: { ...base.mcp, approvals: [{ tools: ['get_daily_report'], approvers: ['reporter'], ttl: '15m' }] },
    }))
    agent = await connect(`${setup.gateway.url}/mcp`, await setup.idp.token('analytics-agent', { resource: MCP_RESOURCE }), '2025-11-25')
    // AgentTools allows call on list_customers, but the agent may not GET its route: refused as unknown.
    await expect(agent.callTool({ name: 'list_customers', arguments: {} })).rejects.toThrow(/Unknown tool: list_customers/)
    const held = (await agent.callTool({ name: 'get_daily_report', arguments: { region: 'eu' } })).structuredContent as { status?: string; approval_id?: string }
    expect(held.status).toBe('pending_approval')
    approvalId = held.approval_id as string
    await waitFor(() => auditRows(join(setup.dir, 'audit.db'), "route LIKE 'mcp:%'").length === 2, 'the tool calls\' records')
  }, 60_000)
  afterAll(() => closeAll(() => agent.close(), setup))

  it('decides them again as tools/call does, on the Denials page and in the trace, agreeing with the record', async () => {
    const groups = await mcpAdmin<ExplainedDenial[]>('denials?since=15m')
    const refused = groups.find((g) => g.route === 'mcp:list_customers') as ExplainedDenial
    expect(refused.recorded).toMatchObject({ status: 403, code: 'policy_denied' })
    expect(refused.explanation).toMatchObject({ effect: 'deny', status: 403, code: 'policy_denied', statement: null })
    expect(refused.explanation.reason).toMatch(/^403 policy_denied: No statement allows GET on route "sales.customers" for role agent\. The tool's own statement allows call on mcp:list_customers/)
    const pending = groups.find((g) => g.route === 'mcp:get_daily_report') as ExplainedDenial
    expect(pending.recorded).toMatchObject({ status: 202, code: 'approval_pending', statement: 'AgentTools' })
    expect(pending.explanation).toMatchObject({ effect: 'allow', status: 202, code: 'approval_pending', statement: 'AgentTools' })
    expect(pending.explanation.reason).toMatch(/Held for approval by reporter \(ttl 15m\)/)
    for (const g of [refused, pending]) {
      expect(g.explained_under).toMatchObject({ agrees: true, disagrees: null, because: [], roles_from: 'record' })
      expect(g.explained_under.caveats).toEqual([])
      expectNoSilentContradiction(g.recorded, g.explanation, g.explained_under)
    }

    const [row] = auditRows(join(setup.dir, 'audit.db'), "route = 'mcp:list_customers'") as Array<{ id: string; time_ms: number }>
    const trace = await mcpAdmin<Trace>(`audit/trace?id=${encodeURIComponent(row?.id as string)}&time=${encodeURIComponent(new Date(row?.time_ms as number).toISOString())}`)
    expect(trace.explanation.route).toMatchObject({ id: 'mcp:list_customers', methods: ['call'], public: false })
    expect(trace.explanation.tool).toMatchObject({ name: 'list_customers', kind: 'route', route: { id: 'sales.customers', method: 'GET' }, decided_on: 'sales.customers' })
    expect(trace.explanation.roles.filter((r) => r.held).map((r) => r.role)).toEqual(['agent'])
    expect(trace.explanation.statements.map((s) => [s.sid, s.route, s.matched])).toEqual([['AgentTools', 'mcp:list_customers', true]])
    expect(trace.explanation.decision).toMatchObject({ effect: 'deny', status: 403, code: 'policy_denied' })
    expect(trace.explained_under).toMatchObject({ agrees: true, caveats: [] })
  })

  it('shows an approver\'s denial of the held call as recorded: it is theirs, not a policy\'s, and not the approver\'s tool call', async () => {
    const res = await request(`${setup.gateway.adminUrl}/api/approvals/${approvalId}/deny`, {
      method: 'POST', headers: { authorization: `Bearer ${MCP_ADMIN_TOKEN}`, 'content-type': 'application/json' }, body: JSON.stringify({ token: await setup.idp.token('looker-reports') }),
    })
    expect(res.statusCode, await res.body.text()).toBe(200)
    await waitFor(() => auditRows(join(setup.dir, 'audit.db'), "route = 'mcp:get_daily_report' AND subject = 'looker-reports'").length === 1, 'the approver\'s decision\'s record')
    const groups = await mcpAdmin<ExplainedDenial[]>('denials?since=15m')
    const decided = groups.find((g) => g.route === 'mcp:get_daily_report' && g.principal === 'looker-reports') as ExplainedDenial
    expect(decided.explanation).toMatchObject({ effect: 'deny', status: 200, code: null })
    expect(decided.explanation.reason).toMatch(/^Not decided again: an approver's decision on a pending tool call is theirs, not a policy's; the record says "Approval [0-9a-f-]{36} denied for analytics-agent\."/)
    expect(decided.explained_under).toMatchObject({ agrees: true, caveats: [expect.stringMatching(/^A tool call \(route "mcp:get_daily_report"\): an approver decided it/)] })
  })

  it('shows the refused tool call decided again on its request\'s page in the browser', { timeout: 120_000 }, async () => {
    const browser = await theBrowser()
    const errors: string[] = []
    const { context, page } = await openPage(browser, { viewport: { width: 1280, height: 800 } })
    try {
      collectPageErrors(page, errors)
      await signInWithToken(page, setup.gateway.adminUrl, MCP_ADMIN_TOKEN)
      await showPage(page, setup.gateway.adminUrl, 'requests?route=mcp:list_customers')
      await page.locator('[data-testid=row]').first().click()
      const trace = page.locator('[data-testid=trace]')
      const explanation = trace.locator('[data-testid=explanation]')
      await expect.poll(() => explanation.innerText()).toMatch(/list_customers/)
      expect(await explanation.locator('[data-testid=tool]').innerText()).toMatch(/list_customers route tool of sales\.customers: sends GET \/sales\/customers/)
      expect(await explanation.locator('[data-testid=statement]').allInnerTexts()).toEqual([expect.stringMatching(/allow AgentTools on mcp:list_customers \(policy agent, role agent\) matches/)])
      expect(await explanation.locator('[data-testid=decision]').innerText()).toMatch(/^DENY 403 policy_denied — No statement allows GET on route "sales\.customers" for role agent/)
      expect(await trace.innerText()).not.toMatch(/Not decided again|Not what was recorded/)

      // Its denial's Simulate opens the simulator on the tool call (not on the endpoint's POST /mcp).
      await showPage(page, setup.gateway.adminUrl, 'denials?since=1h')
      const group = page.locator('[data-testid=denial]', { hasText: 'mcp:list_customers' })
      expect(await group.innerText()).toMatch(/Now: 403 policy_denied: No statement allows GET on route "sales\.customers"/)
      expect(await page.locator('[data-testid=denial]', { hasText: 'mcp:get_daily_report' }).filter({ hasText: 'pending (approvers' }).innerText()).toMatch(/Now: would be allowed, and held for approval/)
      await group.getByRole('button', { name: 'Simulate' }).click()
      expect(await page.locator('input[name=tool]').inputValue()).toBe('list_customers')
      await page.getByRole('button', { name: 'Explain', exact: true }).click()
      const simulated = page.locator('[data-testid=explain-result] [data-testid=explanation]')
      await expect.poll(() => simulated.count()).toBe(1)
      expect(await simulated.locator('[data-testid=tool]').innerText()).toMatch(/list_customers route tool of sales\.customers/)
      expect(await simulated.locator('[data-testid=decision]').innerText()).toMatch(/^DENY 403 policy_denied — No statement allows GET on route "sales\.customers" for role agent/)
      expect(errors).toEqual([])
    } finally {
      await context.close()
    }
  })
})
