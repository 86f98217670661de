// Time-bucketed aggregates of the audit log for the console (issue 20), computed by the database,
// never by the browser: requests per bucket by outcome, latency percentiles (the whole request vs
// the upstream's share), the busiest routes and principals, the denial reasons, and denials grouped
// by code × route × principal. SQLite and PostgreSQL answer the same shapes.
//
// Every query is a range scan of the console index (sinks/: time first, then the columns these
// read), so it reads the index, not the table: bench/console.ts measures them on 1,000,000 records.
import type { AuditCounts, DenialGroup, Overview } from './aggregate-shapes.ts'
import type { AuditSource } from './search.ts'
import { connectAuditReader } from './sinks/postgres.ts'
import { latencyBinSql, NoAuditLog, openSqlite } from './sinks/sqlite.ts'

export type { AuditCounts, DenialGroup, Overview } from './aggregate-shapes.ts'

export interface AggregateQuery {
  sinceMs: number
  untilMs: number
  /** Width of one bucket (ms); the time axis is cut at multiples of it. */
  bucketMs: number
  route?: string
  principal?: string
}

/** The widths a bucket may have: at most MAX_BUCKETS of them cover the range. */
const STEPS = [1, 5, 10, 30, 60, 300, 600, 1800, 3600, 3 * 3600, 6 * 3600, 12 * 3600, 86_400].map((s) => s * 1000)
export const MAX_BUCKETS = 120
export const MAX_RANGE_MS = 31 * 86_400_000

/** The bucket for a range: at most MAX_BUCKETS; from an hour up, whole minutes (the rollups' grain). */
export function bucketFor(rangeMs: number): number {
  return STEPS.find((step) => rangeMs / step <= MAX_BUCKETS && (rangeMs < 3_600_000 || step % 60_000 === 0)) ?? (STEPS.at(-1) as number)
}

const TOP = 10
/** A forwarded request's whole duration (null otherwise: percentiles skip nulls), to set beside its upstream_ms. */
const FORWARDED = 'CASE WHEN upstream_ms IS NOT NULL THEN duration_ms END'

interface Runner {
  all(sql: { sqlite: string; postgres: string }, params: unknown[]): Promise<Array<Record<string, unknown>>>
  close(): Promise<void>
}

async function runnerFor(source: AuditSource): Promise<Runner> {
  if (source.type === 'sqlite') {
    const db = openSqlite(source.path, { readOnly: true })
    return {
      // `?` throughout; SQLite binds by position.
      async all(sql, params) {
        return db.prepare(sql.sqlite).all(...(params as Array<string | number>)) as Array<Record<string, unknown>>
      },
      async close() {
        db.close()
      },
    }
  }
  const client = await connectAuditReader(source.url, source.readTimeoutMs)
  return {
    async all(sql, params) {
      const text = sql.postgres.replaceAll('{schema}', source.schema)
      return (await client.query(text, params)).rows as Array<Record<string, unknown>>
    },
    async close() {
      await client.end()
    },
  }
}

/** The range and the optional filters, as a WHERE clause with its parameters in each dialect. */
function where(q: AggregateQuery, extra: string[] = []): { sqlite: string; postgres: string; params: unknown[] } {
  const lite = ['time_ms >= ?', 'time_ms < ?']
  const pg = ['time >= $1', 'time < $2']
  const params: unknown[] = [q.sinceMs, q.untilMs]
  const add = (column: string, value: string) => {
    params.push(value)
    lite.push(`${column} = ?`)
    pg.push(`${column} = $${params.length}`)
  }
  if (q.route !== undefined) add('route', q.route)
  if (q.principal !== undefined) add('subject', q.principal)
  return { sqlite: `WHERE ${[...lite, ...extra].join(' AND ')}`, postgres: `WHERE ${[...pg, ...extra].join(' AND ')}`, params }
}

const num = (v: unknown) => Number(v ?? 0)
const numOrNull = (v: unknown) => (v === null || v === undefined ? null : Math.round(Number(v) * 1000) / 1000)

/** Runs fn with the log's runner; a log with nothing written yet reads as empty (`empty`). */
async function withRunner<T>(source: AuditSource, empty: T, fn: (run: Runner) => Promise<T>): Promise<T> {
  let run: Runner
  try {
    run = await runnerFor(source)
  } catch (err) {
    if (err instanceof NoAuditLog) return empty
    throw err
  }
  try {
    return await fn(run)
  } finally {
    await run.close()
  }
}

export async function auditOverview(source: AuditSource, q: AggregateQuery): Promise<Overview> {
  const first = Math.floor(q.sinceMs / q.bucketMs)
  const last = Math.floor((q.untilMs - 1) / q.bucketMs)
  const buckets = Array.from({ length: Math.max(0, last - first + 1) }, (_, i) => (first + i) * q.bucketMs)
  const empty: Overview = {
    since: new Date(q.sinceMs).toISOString(),
    until: new Date(q.untilMs).toISOString(),
    bucket_ms: q.bucketMs,
    buckets,
    outcomes: [],
    latency: { total_p50: buckets.map(() => null), total_p99: buckets.map(() => null), upstream_p50: buckets.map(() => null), upstream_p99: buckets.map(() => null) },
    totals: { requests: 0, allow: 0, deny: 0, error: 0 },
    top_routes: [],
    top_principals: [],
    denial_reasons: [],
  }
  return withRunner(source, empty, async (run) => {
    if (await rollupsServe(run, source, q)) return fromRollups(run, q, empty, first)
    const w = where(q)
    const b = q.bucketMs
    const pgBucket = `floor(extract(epoch from time) * 1000 / ${b})::bigint`
    // SQLite groups by an expression through a temporary B-tree (2 s for 1,000,000 rows, measured);
    // one query per bucket, each a range of the index, groups small sets instead (3× faster).
    const byBucket = async (sqlite: string, postgres: string): Promise<Array<Record<string, unknown>>> => {
      if (source.type === 'postgres') return run.all({ sqlite: '', postgres }, bound(source, w.params))
      const rows: Array<Record<string, unknown>> = []
      for (let i = 0; i < buckets.length; i++) {
        const from = Math.max(q.sinceMs, (buckets[i] as number))
        const to = Math.min(q.untilMs, (buckets[i] as number) + b)
        for (const row of await run.all({ sqlite: sqlite.replace('{where}', where({ ...q, sinceMs: from, untilMs: to }).sqlite), postgres: '' }, [from, to, ...w.params.slice(2)])) {
          rows.push({ ...row, b: first + i })
        }
      }
      return rows
    }
    const outcomeRows = await byBucket(
      'SELECT decision, code, COUNT(*) AS n FROM audit_records {where} GROUP BY decision, code',
      `SELECT ${pgBucket} AS b, decision, code, count(*) AS n FROM {schema}.audit_records ${w.postgres} GROUP BY 1, 2, 3`,
    )
    const series = new Map<string, number[]>()
    for (const row of outcomeRows) {
      const decision = row.decision as string
      const key = decision === 'allow' ? 'allow' : `${decision}:${(row.code as string | null) ?? 'none'}`
      let counts = series.get(key)
      if (!counts) series.set(key, (counts = buckets.map(() => 0)))
      const index = num(row.b) - first
      const n = num(row.n)
      if (index >= 0 && index < counts.length) counts[index] = (counts[index] as number) + n
      empty.totals.requests += n
      empty.totals[decision as 'allow' | 'deny' | 'error'] += n
    }
    // allow first, then denials, then errors; within each, the commonest first.
    const rank = (key: string) => (key === 'allow' ? 0 : key.startsWith('deny:') ? 1 : 2)
    const total = (counts: number[]) => counts.reduce((a, c) => a + c, 0)
    empty.outcomes = [...series.entries()]
      .sort(([a, ca], [bk, cb]) => rank(a) - rank(bk) || total(cb) - total(ca) || (a < bk ? -1 : 1))
      .map(([key, counts]) => ({ key, counts }))

    const latencyRows = await byBucket(
      `SELECT median(${FORWARDED}) AS t50, percentile(${FORWARDED}, 99) AS t99, median(upstream_ms) AS u50, percentile(upstream_ms, 99) AS u99
        FROM audit_records {where}`,
      `SELECT ${pgBucket} AS b, percentile_cont(0.5) WITHIN GROUP (ORDER BY ${FORWARDED}) AS t50,
        percentile_cont(0.99) WITHIN GROUP (ORDER BY ${FORWARDED}) AS t99, percentile_cont(0.5) WITHIN GROUP (ORDER BY upstream_ms) AS u50,
        percentile_cont(0.99) WITHIN GROUP (ORDER BY upstream_ms) AS u99 FROM {schema}.audit_records ${w.postgres} GROUP BY 1`,
    )
    for (const row of latencyRows) {
      const index = num(row.b) - first
      if (index < 0 || index >= buckets.length) continue
      empty.latency.total_p50[index] = numOrNull(row.t50)
      empty.latency.total_p99[index] = numOrNull(row.t99)
      empty.latency.upstream_p50[index] = numOrNull(row.u50)
      empty.latency.upstream_p99[index] = numOrNull(row.u99)
    }

    // Summed over the buckets (SQLite answers per bucket, PostgreSQL at once), then the largest.
    const top = <K extends string>(rows: Array<Record<string, unknown>>, key: string, counts: K[]) => {
      const merged = new Map<string | null, Record<K | 'n', number>>()
      for (const row of rows) {
        const k = (row[key] as string | null) ?? null
        let sums = merged.get(k)
        if (!sums) merged.set(k, (sums = Object.fromEntries([['n', 0], ...counts.map((c) => [c, 0])]) as Record<K | 'n', number>))
        for (const c of ['n', ...counts] as Array<K | 'n'>) sums[c] += num(row[c])
      }
      return [...merged.entries()].sort(([ka, a], [kb, b]) => b.n - a.n || String(ka) .localeCompare(String(kb))).slice(0, TOP)
    }
    const routeRows = await byBucket(
      `SELECT route, COUNT(*) AS n, SUM(decision = 'deny') AS denied, SUM(decision = 'error') AS errors FROM audit_records {where} GROUP BY route`,
      `SELECT route, count(*) AS n, count(*) FILTER (WHERE decision = 'deny') AS denied, count(*) FILTER (WHERE decision = 'error') AS errors
        FROM {schema}.audit_records ${w.postgres} GROUP BY route`,
    )
    empty.top_routes = top(routeRows, 'route', ['denied', 'errors']).map(([route, c]) => ({ route, requests: c.n, denied: c.denied, errors: c.errors }))
    const principalRows = await byBucket(
      `SELECT subject, COUNT(*) AS n, SUM(decision = 'deny') AS denied FROM audit_records {where} GROUP BY subject`,
      `SELECT subject, count(*) AS n, count(*) FILTER (WHERE decision = 'deny') AS denied FROM {schema}.audit_records ${w.postgres} GROUP BY subject`,
    )
    empty.top_principals = top(principalRows, 'subject', ['denied']).map(([principal, c]) => ({ principal, requests: c.n, denied: c.denied }))

    const dw = where(q, ["decision = 'deny'"])
    const reasonRows = await run.all({
      sqlite: `SELECT code, statement, COUNT(*) AS n FROM audit_records ${dw.sqlite} GROUP BY code, statement ORDER BY n DESC, code LIMIT ${TOP}`,
      postgres: `SELECT code, statement, count(*) AS n FROM {schema}.audit_records ${dw.postgres} GROUP BY code, statement ORDER BY n DESC, code LIMIT ${TOP}`,
    }, bound(source, dw.params))
    empty.denial_reasons = reasonRows.map((r) => ({ code: (r.code as string | null) ?? null, statement: (r.statement as string | null) ?? null, count: num(r.n) }))
    return empty
  })
}

/**
 * SQLite keeps per-minute rollups (sinks/sqlite.ts): a range of an hour or more, unfiltered, in whole-minute
 * buckets, is summed from them (its partial minutes at the edges from the records), its percentiles
 * from log-scale bins (±4.5%). Shorter or filtered ranges read the records themselves (exact).
 */
async function rollupsServe(run: Runner, source: AuditSource, q: AggregateQuery): Promise<boolean> {
  if (source.type !== 'sqlite' || q.route !== undefined || q.principal !== undefined) return false
  if (q.untilMs - q.sinceMs < 3_600_000 || q.bucketMs % 60_000 !== 0) return false
  return (await run.all({ sqlite: "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'audit_rollup_outcomes'", postgres: '' }, [])).length > 0
}

/** A percentile from a histogram of log-scale bins (bin b holds values near 2^(b/8)). */
function percentileOf(bins: Array<[number, number]>, p: number): number | null {
  const total = bins.reduce((sum, [, n]) => sum + n, 0)
  if (total === 0) return null
  const rank = Math.max(1, Math.ceil(total * p))
  let seen = 0
  for (const [bin, n] of bins.sort((a, b) => a[0] - b[0])) {
    seen += n
    if (seen >= rank) return Math.round(2 ** (bin / 8) * 1000) / 1000
  }
  return null
}

async function fromRollups(run: Runner, q: AggregateQuery, out: Overview, first: number): Promise<Overview> {
  // Whole minutes from the rollups; the partial minutes at either edge from the records themselves,
  // so nothing before since or from until on is counted (the range's edges are exact).
  const from = Math.ceil(q.sinceMs / 60_000)
  const to = Math.floor(q.untilMs / 60_000)
  const perBucket = Math.round(q.bucketMs / 60_000)
  const sql = (text: string) => ({ sqlite: text, postgres: '' })
  /**
   * The rollup rows of the whole minutes, then the same columns from the records of each edge (each
   * `records` select once per edge): a UNION ALL to sum, and its parameters.
   */
  const both = (rollup: string, records: string[], filter = '', recordsOnly = '') => {
    const arms = [`${rollup} WHERE minute >= ? AND minute < ?${filter}`]
    const params: number[] = [from, to]
    for (const [start, end] of [[q.sinceMs, from * 60_000], [to * 60_000, q.untilMs]] as const) {
      for (const select of records) {
        arms.push(`${select} WHERE time_ms >= ? AND time_ms < ?${filter}${recordsOnly}`)
        params.push(start, end)
      }
    }
    return { text: arms.join(' UNION ALL '), params }
  }
  const sum = async (select: string, union: { text: string; params: number[] }, rest: string) =>
    run.all(sql(`${select} FROM (${union.text}) ${rest}`), union.params)
  const outcomes = await sum('SELECT b, decision, code, SUM(n) AS n', both(
    `SELECT minute / ${perBucket} AS b, decision, code, n FROM audit_rollup_outcomes`,
    [`SELECT time_ms / ${q.bucketMs} AS b, decision, coalesce(code, '') AS code, 1 AS n FROM audit_records`],
  ), 'GROUP BY 1, 2, 3')
  const series = new Map<string, number[]>()
  for (const row of outcomes) {
    const decision = row.decision as 'allow' | 'deny' | 'error'
    const key = decision === 'allow' ? 'allow' : `${decision}:${(row.code as string) || 'none'}`
    let counts = series.get(key)
    if (!counts) series.set(key, (counts = out.buckets.map(() => 0)))
    const index = num(row.b) - first
    const n = num(row.n)
    if (index >= 0 && index < counts.length) counts[index] = (counts[index] as number) + n
    out.totals.requests += n
    out.totals[decision] += n
  }
  const rank = (key: string) => (key === 'allow' ? 0 : key.startsWith('deny:') ? 1 : 2)
  const total = (counts: number[]) => counts.reduce((a, c) => a + c, 0)
  out.outcomes = [...series.entries()]
    .sort(([a, ca], [bk, cb]) => rank(a) - rank(bk) || total(cb) - total(ca) || (a < bk ? -1 : 1))
    .map(([key, counts]) => ({ key, counts }))

  const bins = new Map<string, Array<[number, number]>>()
  const edgeLatency = (kind: number, column: string) =>
    `SELECT time_ms / ${q.bucketMs} AS b, ${kind} AS kind, ${latencyBinSql(column)} AS bin, 1 AS n FROM audit_records`
  // Only forwarded requests have a latency (upstream_ms set), as in the rollup.
  for (const row of await sum('SELECT b, kind, bin, SUM(n) AS n', both(
    `SELECT minute / ${perBucket} AS b, kind, bin, n FROM audit_rollup_latency`,
    [edgeLatency(0, 'duration_ms'), edgeLatency(1, 'upstream_ms')],
    '',
    ' AND upstream_ms IS NOT NULL',
  ), 'GROUP BY 1, 2, 3')) {
    const key = `${num(row.b) - first}:${num(row.kind)}`
    let list = bins.get(key)
    if (!list) bins.set(key, (list = []))
    list.push([num(row.bin), num(row.n)])
  }
  for (let i = 0; i < out.buckets.length; i++) {
    const total = bins.get(`${i}:0`) ?? []
    const upstream = bins.get(`${i}:1`) ?? []
    out.latency.total_p50[i] = percentileOf(total, 0.5)
    out.latency.total_p99[i] = percentileOf(total, 0.99)
    out.latency.upstream_p50[i] = percentileOf(upstream, 0.5)
    out.latency.upstream_p99[i] = percentileOf(upstream, 0.99)
  }

  const nullIfEmpty = (v: unknown) => ((v as string) === '' ? null : (v as string))
  const deny = "SUM(CASE WHEN decision = 'deny' THEN n ELSE 0 END) AS denied"
  out.top_routes = (await sum(`SELECT route, SUM(n) AS n, ${deny}, SUM(CASE WHEN decision = 'error' THEN n ELSE 0 END) AS errors`, both(
    'SELECT route, decision, n FROM audit_rollup_outcomes',
    ["SELECT coalesce(route, '') AS route, decision, 1 AS n FROM audit_records"],
  ), `GROUP BY route ORDER BY n DESC, route LIMIT ${TOP}`))
    .map((r) => ({ route: nullIfEmpty(r.route), requests: num(r.n), denied: num(r.denied), errors: num(r.errors) }))
  out.top_principals = (await sum(`SELECT subject, SUM(n) AS n, ${deny}`, both(
    'SELECT subject, decision, n FROM audit_rollup_principals',
    ["SELECT coalesce(subject, '') AS subject, decision, 1 AS n FROM audit_records"],
  ), `GROUP BY subject ORDER BY n DESC, subject LIMIT ${TOP}`))
    .map((r) => ({ principal: nullIfEmpty(r.subject), requests: num(r.n), denied: num(r.denied) }))
  out.denial_reasons = (await sum('SELECT code, statement, SUM(n) AS n', both(
    'SELECT code, statement, n FROM audit_rollup_outcomes',
    ["SELECT coalesce(code, '') AS code, coalesce(statement, '') AS statement, 1 AS n FROM audit_records"],
    " AND decision = 'deny'",
  ), `GROUP BY code, statement ORDER BY n DESC, code LIMIT ${TOP}`))
    .map((r) => ({ code: nullIfEmpty(r.code), statement: nullIfEmpty(r.statement), count: num(r.n) }))
  return out
}

/** Denials in the range, grouped by code × route × principal, the largest groups first. */
export async function auditDenials(source: AuditSource, q: Omit<AggregateQuery, 'bucketMs'>, limit = 100): Promise<DenialGroup[]> {
  return withRunner(source, [] as DenialGroup[], async (run) => {
    const w = where({ ...q, bucketMs: 1 }, ["decision = 'deny'"])
    // SQLite: the bare columns of a MAX() aggregate come from the row that has the maximum. The
    // sample carries what explaining it again reads (roles, actor, credential): the console read
    // each group's newest record again for them, a query per group (up to 100 a page).
    const rows = await run.all({
      sqlite: `SELECT code, route, subject, COUNT(*) AS n, MAX(time_ms) AS last, method, path, statement, detail, issuer, client_id, source_ip, status,
        roles, actor, credential, "limit"
        FROM audit_records ${w.sqlite} GROUP BY code, route, subject ORDER BY n DESC, last DESC LIMIT ${limit}`,
      postgres: `SELECT code, route, subject, count(*) AS n, (extract(epoch from max(time)) * 1000)::bigint AS last,
        (array_agg(json_build_object('method', method, 'path', path, 'statement', statement, 'detail', detail, 'issuer', issuer,
          'client_id', client_id, 'source_ip', source_ip, 'status', status, 'roles', roles, 'actor', actor, 'credential', credential, 'limit', "limit") ORDER BY time DESC))[1] AS sample
        FROM {schema}.audit_records ${w.postgres} GROUP BY code, route, subject ORDER BY n DESC, last DESC LIMIT ${limit}`,
    }, bound(source, w.params))
    return rows.map((r) => {
      const s = (r.sample ?? r) as Record<string, unknown>
      return {
        code: (r.code as string | null) ?? null,
        route: (r.route as string | null) ?? null,
        principal: (r.subject as string | null) ?? null,
        count: num(r.n),
        last: new Date(num(r.last)).toISOString(),
        sample: {
          method: s.method as string,
          path: s.path as string,
          statement: (s.statement as string | null) ?? null,
          detail: (s.detail as string | null) ?? null,
          issuer: (s.issuer as string | null) ?? null,
          client_id: (s.client_id as string | null) ?? null,
          source_ip: s.source_ip as string,
          status: num(s.status),
          // SQLite keeps roles as JSON text, PostgreSQL as JSONB (parsed by pg, inside the sample's JSON).
          roles: typeof s.roles === 'string' ? (JSON.parse(s.roles) as string[]) : Array.isArray(s.roles) ? (s.roles as string[]) : [],
          actor: (s.actor as string | null) ?? null,
          credential: (s.credential as string | null) ?? null,
          limit: (s.limit as string | null) ?? null,
        },
      }
    })
  })
}

/** The parameters as each dialect compares them: SQLite's time_ms integers, PostgreSQL's timestamps (the first two). */
function bound(source: AuditSource, params: unknown[]): unknown[] {
  return source.type === 'sqlite' ? params : params.map((p, i) => (i < 2 ? new Date(p as number) : p))
}

/** What the catalog shows beside the config: refusals by limit, and unknown issuers seen. */
export async function auditCounts(source: AuditSource, sinceMs: number): Promise<AuditCounts> {
  return withRunner(source, { limits: [], unknown_issuers: [] } as AuditCounts, async (run) => {
    const since = source.type === 'sqlite' ? sinceMs : new Date(sinceMs)
    const limits = await run.all({
      sqlite: 'SELECT "limit" AS name, COUNT(*) AS n, MAX(time_ms) AS last FROM audit_records WHERE time_ms >= ? AND "limit" IS NOT NULL GROUP BY 1',
      postgres: 'SELECT "limit" AS name, count(*) AS n, (extract(epoch from max(time)) * 1000)::bigint AS last FROM {schema}.audit_records WHERE time >= $1 AND "limit" IS NOT NULL GROUP BY 1',
    }, [since])
    const unknown = await run.all({
      sqlite: `SELECT detail, COUNT(*) AS n, MAX(time_ms) AS last FROM audit_records WHERE decision = 'deny' AND time_ms >= ? AND code = 'issuer_unknown'
        GROUP BY detail ORDER BY n DESC LIMIT 20`,
      postgres: `SELECT detail, count(*) AS n, (extract(epoch from max(time)) * 1000)::bigint AS last FROM {schema}.audit_records
        WHERE decision = 'deny' AND time >= $1 AND code = 'issuer_unknown' GROUP BY detail ORDER BY n DESC LIMIT 20`,
    }, [since])
    return {
      limits: limits.map((r) => ({ limit: r.name as string, count: num(r.n), last: new Date(num(r.last)).toISOString() })),
      unknown_issuers: unknown.map((r) => ({ detail: (r.detail as string | null) ?? null, count: num(r.n), last: new Date(num(r.last)).toISOString() })),
    }
  })
}
