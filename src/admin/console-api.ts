// What the console reads and does under /api/ (issue 20), beside the admin API's own endpoints
// (api.ts). Aggregates come from the audit database (audit/aggregate.ts); explanations, the trace
// of a recorded request, the denials' "why" and the replay all run the gateway's own decision code
// (gateway/explain.ts), so the console cannot disagree with the gateway; where a record keeps too
// little to decide it again alike (its token's claims), the answer says so (replay.ts).
import {
  AuditQueryError, auditSourceOf, bucketFor, CHECKPOINT_KEY, checkpointPathOf, checkpointVerificationKeys, MAX_RANGE_MS, NoAuditLog, ordered, pageAfter, pageAt, pagedRecords,
  parseAuditQuery, parseSince, parseTime, parseUntilExclusive, readCounts, sinceRefusal, filterText, readDenials, readOverview, readRecords, readVerification,
  type AuditCounts, type AuditCursor, type AuditQuery, type AuditRecord, type AuditSource, type RecordReader,
} from '../audit/index.ts'
import { jwtIssuers, x509Issuers, type AuditConfig } from '../config/index.ts'
import { GatewayError, truncateClientValue } from '../errors/index.ts'
import { AUTH_FAILURES_LIMIT } from '../limits/index.ts'
import type { Runtime } from '../gateway/index.ts'
import { ApprovalStoreError, type Approval } from '../agents/index.ts'
import type { AdminActions } from './api.ts'
import type { AdminCaller } from './auth.ts'
import type { AuditPage, Catalog, ConsoleSession, ExplainedDenial, MatrixCell, RecordedDecision, Trace, Verification } from './console-shapes.ts'
import { explainRecorded, recordedClaims, recordedCredential, recordedOverride, replay, type RecordedRequest } from './replay.ts'
import type { AdminRequest, AdminRoute } from './server.ts'

/** The most records an export holds (the newest of the filter). */
const EXPORT_MAX = 100_000

/** On an export cut at its limit while more records match: the limit (the file name says it too). */
const EXPORT_MORE_HEADER = 'x-bouncer-export-truncated'

function sourceOf(actions: AdminActions): AuditSource {
  const source = auditSourceOf(actions.auditConfig())
  if (!source) throw new GatewayError('route_not_found', { detail: 'No audit sink can be searched: configure an sqlite or postgres sink.' })
  return source
}

/** since (a duration back from now, or a time) and until (a time or a whole day, default now): a range the console may ask for. */
export function rangeOf(query: URLSearchParams, now = Date.now(), fallback = '1h'): { sinceMs: number; untilMs: number } {
  const since = query.get('since') ?? fallback
  const sinceMs = parseSince(since, now)
  if (sinceMs === undefined) throw new GatewayError('bad_request', { detail: `${sinceRefusal(since)}.` })
  const until = query.get('until')
  // No zone: UTC, as the search reads it. A date alone is that whole day: as its first instant,
  // until=2026-11-26 left the day out of the charts, and a range of one day was refused.
  const untilMs = until === null ? now : parseUntilExclusive(until)
  if (untilMs === undefined) throw new GatewayError('bad_request', { detail: `until "${until}" is not a time.` })
  if (untilMs <= sinceMs) throw new GatewayError('bad_request', { detail: 'since must be before until.' })
  if (untilMs - sinceMs > MAX_RANGE_MS) throw new GatewayError('bad_request', { detail: 'The range is at most 31 days.' })
  return { sinceMs, untilMs }
}

function filtersOf(query: URLSearchParams): { route?: string; principal?: string } {
  const out: { route?: string; principal?: string } = {}
  const route = query.get('route')
  const principal = query.get('principal')
  // As the log keeps them, as the search reads its filters (audit/search.ts): cut at the record's bound too.
  if (route) out.route = filterText('route', route)
  if (principal) out.principal = filterText('principal', principal)
  return out
}

/** The audit search's filters (those of `bouncer audit`), plus `offset` for paging. */
function searchOf(query: URLSearchParams, maxLimit: number): AuditQuery & { offset: number } {
  const { offset, ...rest } = Object.fromEntries(query) as Record<string, string>
  delete rest.format
  delete rest.before
  delete rest.before_id
  try {
    const parsed = parseAuditQuery(rest, maxLimit)
    // Digits only, as limit and status: Number() took 0x10 as 16 and 1e3 as 1000 (a probe). Empty is none, as an empty filter is.
    const skip = offset === undefined || offset.trim() === '' ? 0 : /^\d{1,6}$/.test(offset) ? Number(offset) : Number.NaN
    if (!Number.isInteger(skip) || skip < 0 || skip > 100_000) throw new AuditQueryError('offset must be a whole number from 0 to 100000')
    return { ...parsed, offset: skip }
  } catch (err) {
    if (err instanceof AuditQueryError) throw new GatewayError('bad_request', { detail: `${err.message}.` })
    throw err
  }
}

/**
 * `before` (a record's time) and `before_id` (its id): the page of records older than that one, in
 * the log's order (time, then seq, then id, newest first: audit/search.ts). A cursor, not an offset, so records written
 * meanwhile neither repeat a row on the next page nor push one off it.
 */
function cursorOf(query: URLSearchParams): AuditCursor | null {
  const before = query.get('before')
  const id = query.get('before_id')
  if (before === null && id === null) return null
  if (before === null || !id) throw new GatewayError('bad_request', { detail: 'before (a record\'s time) and before_id (its id) go together.' })
  // A time that is none was answered "before and before_id go together" though both were given (an adversarial probe).
  const time = parseTime(before)
  if (time === undefined) throw new GatewayError('bad_request', { detail: `before "${truncateClientValue(before, 64)}" is not a time (a record's, e.g. 2026-11-26T10:00:00.123Z).` })
  if (query.has('offset')) throw new GatewayError('bad_request', { detail: 'before and offset do not go together.' })
  return { time, id }
}

/** The console's reads of the log, off the gateway's thread: a log not made yet has no records. */
const recordsOf = (source: AuditSource): RecordReader => (q) => orEmpty(readRecords(source, q), [] as AuditRecord[])

/** Each record as its line, after the head line when there is one. */
async function* mapLines(records: AsyncIterable<AuditRecord>, line: (record: AuditRecord) => string, head?: string): AsyncGenerator<string> {
  if (head !== undefined) yield head
  for await (const record of records) yield line(record)
}

async function orEmpty<T>(work: Promise<T>, empty: T): Promise<T> {
  try {
    return await work
  } catch (err) {
    if (err instanceof NoAuditLog) return empty
    throw err
  }
}

/** What the record says was decided: it stands first in the trace and heads a denials group. */
function recordedDecision(r: Pick<AuditRecord, 'decision' | 'status' | 'code' | 'statement' | 'detail'> & { roles: readonly string[] | null }): RecordedDecision {
  return { decision: r.decision, status: r.status, code: r.code, statement: r.statement, detail: r.detail, roles: r.roles === null ? null : [...r.roles] }
}

function csvCell(value: unknown): string {
  const text = value === null || value === undefined ? '' : Array.isArray(value) ? value.join(';') : String(value)
  // A cell a spreadsheet would run as a formula is prefixed with ' (OWASP "CSV injection"). So is
  // what follows a `;` or a line break in it: Excel where the list separator is `;` (German,
  // French…) starts a cell there, as a comma-quoted cell is no quoted cell to it, and a client's
  // path `/a;=1+2` or a token's iss `…\n=3+4` became a cell that begins with `=` (a probe).
  const safe = text.replace(/(^|[;\n\r])(?="*[=+\-@\t\r])/g, "$1'")
  return /[",;\n\r]/.test(safe) ? `"${safe.replaceAll('"', '""')}"` : safe
}

/** The routes × roles matrix: for each route, each role's methods allowed, and whether conditions apply. */
function matrixOf(runtime: Runtime): Catalog['matrix'] {
  const out: Catalog['matrix'] = {}
  for (const route of runtime.config.routes) {
    const cells: Record<string, MatrixCell> = {}
    const policy = runtime.access.policyFor(route.id)
    for (const role of runtime.access.roles) {
      const bucket = policy?.get(role.name)
      if (!bucket) continue
      const methods = route.methods.includes('*') ? ['*'] : route.methods
      const covers = (s: { anyAction: boolean; actions: ReadonlySet<string> }, m: string) => s.anyAction || s.actions.has(m)
      const conditional = (s: { sourceIp: unknown; claims: unknown }) => s.sourceIp !== null || s.claims !== null
      const deny = methods.filter((m) => bucket.deny.some((s) => covers(s, m) && !conditional(s)))
      const allow = methods.filter((m) => !deny.includes(m) && bucket.allow.some((s) => covers(s, m)))
      const isConditional = [...bucket.allow, ...bucket.deny].some(conditional)
      cells[role.name] = { allow, deny, conditional: isConditional }
    }
    out[route.id] = cells
  }
  return out
}

/**
 * The approvals waiting, as GET /api/approvals?status=pending answers; null where the gateway has none
 * (no endpoint, or no mcp.approvals), or where its store cannot be read: then why, and the rest of the
 * catalog still answers (a store that was no database took the whole Catalog page with it: the admin probe).
 */
async function pendingApprovals(list: AdminRoute | undefined, request: AdminRequest): Promise<Pick<Catalog, 'approvals' | 'approvals_error'>> {
  const none = { approvals: null, approvals_error: null }
  if (!list) return none
  try {
    const reply = await list.handle({ ...request, path: 'approvals', query: new URLSearchParams({ status: 'pending' }), params: {}, body: undefined })
    return { approvals: Array.isArray(reply.body) ? (reply.body as Approval[]) : null, approvals_error: null }
  } catch (err) {
    if (err instanceof GatewayError && err.code === 'route_not_found') return none
    if (err instanceof GatewayError && err.cause instanceof ApprovalStoreError) return { approvals: null, approvals_error: err.detail }
    throw err
  }
}

/**
 * The last hour's refusals by limit and unknown issuers, from the audit log; null where the log cannot
 * be read, and why: the rest of the catalog is the running config, and an audit database that was down
 * took the whole Catalog page with it (503), issuers' state included (the admin probe).
 */
async function recentCounts(audit: AuditConfig): Promise<{ counts: AuditCounts | null; audit_error: string | null }> {
  const source = auditSourceOf(audit)
  const none = { limits: [], unknown_issuers: [] }
  if (!source) return { counts: none, audit_error: null }
  try {
    return { counts: await orEmpty(readCounts(source, Date.now() - 3_600_000), none), audit_error: null }
  } catch (err) {
    if (err instanceof GatewayError && err.code === 'audit_unavailable') return { counts: null, audit_error: err.detail }
    throw err
  }
}

/** The running config as the console shows it, with the last hour's refusals and unknown issuers, and the approvals waiting. */
async function catalogOf(rt: Runtime, audit: AuditConfig, approvals: AdminRoute | undefined, request: AdminRequest): Promise<Catalog> {
  const { counts, audit_error } = await recentCounts(audit)
  const limitedBy = counts === null ? null : new Map(counts.limits.map((l) => [l.limit, l]))
  type Issuer = Catalog['issuers'][number]
  return {
    routes: rt.config.routes.map((r) => ({
      id: r.id, methods: r.methods, path: r.path, public: r.public, limits: r.limits,
      target: r.upstream ? { kind: 'upstream', name: r.upstream } : r.function ? { kind: 'function', name: r.function } : 'dataset' in r && r.dataset ? { kind: 'dataset', name: (r.dataset as { source: string }).source } : { kind: 'none', name: null },
    })),
    roles: rt.access.roles.map((role) => role.name),
    matrix: matrixOf(rt),
    issuers: [
      ...jwtIssuers(rt.config).map((issuer): Issuer => {
        const keys = rt.issuerKeys.get(issuer.name)
        return {
          name: issuer.name, type: 'jwt', issuer: issuer.issuer, jwks_uri: issuer.jwks_uri ?? null,
          state: keys?.state ?? (issuer.introspection ? 'introspection' : 'none'), keys: keys?.keys ?? [],
          last_refresh: keys?.lastRefreshAt ? new Date(keys.lastRefreshAt).toISOString() : null, last_error: keys?.lastError ?? null,
        }
      }),
      ...x509Issuers(rt.config).map((issuer): Issuer => ({ name: issuer.name, type: 'x509', issuer: null, jwks_uri: null, state: 'ready', keys: [], last_refresh: null, last_error: null })),
    ],
    drift: counts?.unknown_issuers ?? null,
    audit_error,
    ...(await pendingApprovals(approvals, request)),
    limits: [...rt.config.limits.map((limit) => ({
      name: limit.name, key: limit.key, rate: limit.rate?.text ?? null, burst: limit.burst ?? null, quota: limit.quota?.text ?? null,
      routes: rt.config.routes.filter((r) => r.limits.includes(limit.name)).map((r) => r.id),
      ...refusals(limitedBy, limit.name),
    })), ...authFailuresRow(rt.config, limitedBy)],
  }
}

type Refusals = Pick<Catalog['limits'][number], 'refused_1h' | 'last_refused'>
type LimitedBy = ReadonlyMap<string, { count: number; last: string | null }> | null

/** A limit's refusals of the last hour; null (not 0) where the audit log could not be read. */
function refusals(limitedBy: LimitedBy, name: string): Refusals {
  if (limitedBy === null) return { refused_1h: null, last_refused: null }
  return { refused_1h: limitedBy.get(name)?.count ?? 0, last_refused: limitedBy.get(name)?.last ?? null }
}

/** auth_failures beside the limits: it counts failures by address on every route that needs an identity. */
function authFailuresRow(config: Runtime['config'], limitedBy: LimitedBy): Catalog['limits'] {
  const guard = config.auth_failures
  if (guard === undefined) return []
  return [{
    name: AUTH_FAILURES_LIMIT, key: 'ip', rate: guard.rate.text, burst: guard.burst ?? guard.rate.count, quota: null,
    routes: [...config.routes.filter((r) => !r.public).map((r) => r.id), ...(config.mcp ? ['builtin/mcp'] : [])],
    ...refusals(limitedBy, AUTH_FAILURES_LIMIT),
  }]
}

/** Who the caller is, and what the console offers it; nobody when no credential was sent. */
function sessionOf(caller: AdminCaller | null, signInPaths: AdminRequest['signInPaths']): ConsoleSession {
  const where = { sign_in: signInPaths?.signIn ?? null, sign_out: signInPaths?.signOut ?? null }
  if (caller === null) return { access: null, via: null, principal: null, role: null, may: { reload: false, verify: false, approve: false }, ...where }
  const admin = caller.access === 'admin'
  return { access: caller.access, via: caller.via, principal: caller.principal ?? null, role: caller.role ?? null, may: { reload: admin, verify: admin, approve: admin }, ...where }
}

export function consoleRoutes(actions: AdminActions, endpoint: (method: AdminRoute['method'], path: string) => AdminRoute | undefined): AdminRoute[] {
  const runtime = () => actions.runtime()
  return [
    {
      method: 'GET',
      path: 'session',
      // Asked with no credential, it answers "nobody" and where to sign in: the page asks it first.
      access: 'anyone',
      handle: ({ caller, signInPaths }) => ({ body: sessionOf(caller, signInPaths) }),
    },
    {
      method: 'GET',
      path: 'overview',
      handle: async ({ query }) => {
        const range = rangeOf(query)
        const q = { ...range, bucketMs: bucketFor(range.untilMs - range.sinceMs), ...filtersOf(query) }
        return { body: await readOverview(sourceOf(actions), q) }
      },
    },
    {
      method: 'GET',
      path: 'denials',
      handle: async ({ query }) => {
        const rt = runtime()
        const code = query.get('code')
        // The aggregate groups by code but does not select by it: more groups are read, then those of the code kept.
        const all = await readDenials(sourceOf(actions), { ...rangeOf(query, Date.now(), '24h'), ...filtersOf(query) }, code ? 1000 : undefined)
        const groups = code ? all.filter((g) => g.code === code).slice(0, 100) : all
        return {
          body: await Promise.all(groups.map(async (group) => {
            const { sample } = group
            const recorded: RecordedRequest = {
              method: sample.method, path: sample.path, route: group.route, issuer: sample.issuer, subject: group.principal, client_id: sample.client_id,
              source_ip: sample.source_ip, decision: 'deny', status: sample.status, code: group.code, statement: sample.statement, detail: sample.detail,
              roles: sample.roles, actor: sample.actor, credential: sample.credential as AuditRecord['credential'], limit: sample.limit,
            }
            const { explanation, under } = await explainRecorded(rt, recorded)
            const claims = recordedClaims(recorded)
            const { status, code, statement, detail, roles } = recordedDecision(recorded)
            return {
              // What happened heads the group; the explanation under the running config follows it.
              recorded: { status, code, statement, detail, roles },
              headline: `${recorded.status} ${recorded.code ?? 'deny'}${recorded.statement ? ` (statement ${recorded.statement})` : ''}`,
              ...group,
              explanation: explanation.decision,
              explained_under: under,
              simulate: { method: recorded.method, path: recordedOverride(recorded, true).path, ip: recorded.source_ip, ...(claims ? { claims, ...recordedCredential(recorded) } : {}), ...(explanation.tool ? { tool: explanation.tool.name } : {}) },
            } satisfies ExplainedDenial
          })),
        }
      },
    },
    {
      method: 'GET',
      path: 'audit/page',
      handle: async ({ query }) => {
        const q = searchOf(query, 200)
        const cursor = cursorOf(query)
        if (cursor !== null) {
          const { rows, more } = await pageAfter(recordsOf(sourceOf(actions)), q, cursor)
          return { body: { records: rows.map(ordered), offset: 0, limit: q.limit, more } satisfies AuditPage }
        }
        const { rows, more } = await pageAt(recordsOf(sourceOf(actions)), q)
        return { body: { records: rows.map(ordered), offset: q.offset, limit: q.limit, more } satisfies AuditPage }
      },
    },
    {
      method: 'GET',
      path: 'audit/export',
      handle: async ({ query }) => {
        const format = query.get('format') ?? 'ndjson'
        if (format !== 'csv' && format !== 'ndjson') throw new GatewayError('bad_request', { detail: 'format is csv or ndjson.' })
        // The offset is no export's (it was read past before, and ignored).
        const q = { ...searchOf(query.has('limit') ? query : new URLSearchParams([...query, ['limit', String(EXPORT_MAX)]]), EXPORT_MAX), offset: 0 }
        const source = sourceOf(actions)
        // Whether a record follows the limit's, asked first (the name and header say it): an export
        // cut at the limit said so nowhere, and a file of exactly 100,000 rows passed for every record of the filter.
        const more = (await orEmpty(readRecords(source, { ...q, offset: q.limit, limit: 1 }), [] as AuditRecord[])).length > 0
        const stamp = new Date().toISOString().replace(/[:.]/g, '-')
        const name = `bouncer-audit-${stamp}${more ? `-newest-${q.limit}-of-more` : ''}`
        const headers = more ? { [EXPORT_MORE_HEADER]: String(q.limit) } : undefined
        const records = pagedRecords(recordsOf(source), q)
        if (format === 'ndjson') {
          return { download: { type: 'application/x-ndjson', filename: `${name}.ndjson`, headers, lines: mapLines(records, (r) => `${JSON.stringify(ordered(r))}\n`) } }
        }
        const fields = Object.keys(ordered({} as AuditRecord))
        const lines = mapLines(records, (r) => `${fields.map((f) => csvCell((r as unknown as Record<string, unknown>)[f])).join(',')}\n`, `${fields.join(',')}\n`)
        return { download: { type: 'text/csv; charset=utf-8', filename: `${name}.csv`, headers, lines } }
      },
    },
    {
      method: 'GET',
      path: 'audit/trace',
      handle: async ({ query }) => {
        const id = query.get('id')
        const time = query.get('time')
        // Read as every other time of the API is: Date.parse took `12` as 2001-12-01 (local time),
        // and a year PostgreSQL has no timestamp for was a 500 (found by the operator probe).
        const at = time === null ? undefined : parseTime(time)
        if (!id || at === undefined) throw new GatewayError('bad_request', { detail: 'trace needs the record\'s id and time.' })
        const rt = runtime()
        // The time narrows the search to one index range; the id picks the record.
        const candidates = await orEmpty(readRecords(sourceOf(actions), { sinceMs: at, untilMs: at, limit: 10_000 }), [] as AuditRecord[])
        const record = candidates.find((r) => r.id === id)
        if (!record) throw new GatewayError('route_not_found', { detail: `No audit record ${JSON.stringify(id)} at ${time}.` })
        const template = rt.config.telemetry.trace_url
        const { explanation, under } = await explainRecorded(rt, record)
        return {
          body: {
            // What happened first: the explanation below is of the running config, and says where it differs.
            recorded: recordedDecision(record),
            record: ordered(record),
            explanation,
            explained_under: under,
            claims: recordedClaims(record) ?? null,
            trace_url: template && record.trace_id ? template.replaceAll('{trace_id}', encodeURIComponent(record.trace_id)) : null,
          } satisfies Trace,
        }
      },
    },
    {
      method: 'POST',
      path: 'audit/verify',
      access: 'admin',
      handle: async () => {
        const file = checkpointPathOf(actions.auditConfig())
        const keyFile = `${file}.key`
        const keys = checkpointVerificationKeys(actions.secretsStore(), keyFile)
        const keyProblem = keys.size > 0 ? null : `no ${CHECKPOINT_KEY} in the secrets store, and no key file at ${keyFile}`
        const started = performance.now()
        const result = await orEmpty(readVerification(sourceOf(actions), { file, keys, keyProblem, retentionMs: actions.auditConfig().retention }), null)
        if (result === null) return { body: { ok: true, checked: 0, chains: 0, empty: true, ms: 0 } satisfies Verification }
        // The gateway serving the console signs its chain with that key: none here is its own fault, not
        // another host's (`bouncer audit verify` notes it there), so the console's answer stays not ok.
        return { body: { ...result, ok: result.ok && result.uncheckable === null, ms: Math.round(performance.now() - started) } satisfies Verification }
      },
    },
    {
      method: 'GET',
      path: 'catalog',
      handle: async (request) => ({ body: await catalogOf(runtime(), actions.auditConfig(), endpoint('GET', 'approvals'), request) }),
    },
    {
      method: 'POST',
      path: 'replay',
      // It reads a pasted config, whose ${env:} references this process resolves: admins only.
      access: 'admin',
      handle: async ({ body }) => {
        const b = (body ?? {}) as Record<string, unknown>
        if (typeof b.config !== 'string' || b.config.trim() === '') throw new GatewayError('bad_request', { detail: 'replay needs "config": the draft config as YAML text.' })
        const hours = b.hours === undefined ? 1 : Number(b.hours)
        if (!Number.isFinite(hours) || hours <= 0 || hours > 24 * 31) throw new GatewayError('bad_request', { detail: '"hours" is a number from 0 to 744.' })
        const rt = runtime()
        const result = await replay(rt, sourceOf(actions), { draft: b.config, sinceMs: Date.now() - hours * 3_600_000 })
        return { status: result.ok ? 200 : 422, body: result }
      },
    },
  ]
}
