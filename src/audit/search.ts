// Reading the audit log back, newest first, for `bouncer audit` and GET /api/audit (verify.ts checks
// it). Both read the first queryable sink: SQLite (read-only, safe beside a running gateway thanks
// to WAL), else PostgreSQL.
import { parseDuration, type AuditConfig } from '../config/index.ts'
import { columnOf, FIELD_SPECS, type FieldSpec, type FilterName, type FilterValues } from './fields.ts'
import { keptValue, storedText, type AuditRecord } from './record.ts'
import { connectAuditReader, recordFromPgRow } from './sinks/postgres.ts'
import { NoAuditLog, openSqlite, recordFromRow } from './sinks/sqlite.ts'

/** A log to read; a PostgreSQL log's reads end after `readTimeoutMs` (the sink's `read_timeout`, 30 s unless given). */
export type AuditSource = { type: 'sqlite'; path: string } | { type: 'postgres'; url: string; schema: string; readTimeoutMs?: number }

export function auditSourceOf(config: AuditConfig): AuditSource | null {
  for (const sink of config.sinks) {
    if (sink.type === 'sqlite') return { type: 'sqlite', path: sink.path }
    if (sink.type === 'postgres') return { type: 'postgres', url: sink.url, schema: sink.schema, readTimeoutMs: sink.read_timeout }
  }
  return null
}

/**
 * Records from `sinceMs` to `untilMs`, newest first, at most `limit` after the newest `offset`
 * (skipped by the database: a page far down was read whole to drop all but its last rows), with the
 * filters' values (fields.ts).
 */
export type AuditQuery = { sinceMs?: number; untilMs?: number; limit: number; offset?: number } & Partial<FilterValues>

/** The fields a search can select by, and the name of each filter. */
const FILTERS = FIELD_SPECS.filter((field): field is FieldSpec & { filter: FilterName } => field.filter !== undefined)

/**
 * RFC 3339's date-time, or its date alone: `2026-11-26`, `2026-11-26T10:00`, `2026-11-26 10:00:00.5`,
 * with a zone (`Z`, `+01:00`) or without. Date.parse takes far more, loosely: `12` and `Dec 1` as
 * 2001-12-01, `2026-02-30` as March 2 (a probe: `bouncer audit --until 12` said "no records match").
 */
const TIME = /^(?<year>\d{4})-(?<month>\d{2})-(?<day>\d{2})(?:[T ](?<clock>\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?)(?<zone>Z|[+-]\d{2}:?\d{2})?)?$/i

/** A time, in ms; one without a zone is UTC, as the log's times and the console's are (Date.parse would take the server's local zone). */
export function parseTime(text: string): number | undefined {
  return readTime(text)?.ms
}

/** parseTime's instant, and whether the text was a date alone (the day, to an until). */
function readTime(text: string): { ms: number; dateAlone: boolean } | undefined {
  const parts = TIME.exec(text.trim())?.groups as { year: string; month: string; day: string; clock?: string; zone?: string } | undefined
  if (!parts) return undefined
  const { year, month, day, clock = '00:00', zone = 'Z' } = parts
  // A day its month does not have is refused, not rolled over into the next month.
  const date = new Date(0)
  date.setUTCFullYear(Number(year), Number(month) - 1, Number(day))
  if (date.getUTCMonth() !== Number(month) - 1 || date.getUTCDate() !== Number(day)) return undefined
  const ms = Date.parse(`${year}-${month}-${day}T${clock}${zone.toUpperCase()}`)
  return Number.isNaN(ms) ? undefined : { ms, dateAlone: parts.clock === undefined }
}

const DAY_MS = 86_400_000

/**
 * An `until`: a time, or a date alone as the whole of that day (UTC), to its last millisecond. As
 * the day's first instant, `--since 2026-11-26 --until 2026-11-26` said "no records match" over a
 * day of records, and `--until 2026-11-26` left that day out (a probe).
 */
export function parseUntil(text: string): number | undefined {
  const time = readTime(text)
  return time && (time.dateAlone ? time.ms + DAY_MS - 1 : time.ms)
}

/**
 * An `until` that ends a range excluding it (the console's charts and denials count `time < until`):
 * a date alone is the next day's first instant, so the day is counted whole, as parseUntil has it.
 */
export function parseUntilExclusive(text: string): number | undefined {
  const time = readTime(text)
  return time && (time.dateAlone ? time.ms + DAY_MS : time.ms)
}

/** `--since 1h` or `--since 2026-11-26T10:00:00Z`. */
export function parseSince(text: string, now = Date.now()): number | undefined {
  const duration = parseDuration(text)
  if (duration.ok) return now - duration.value
  return parseTime(text)
}

/**
 * Why a since is refused (without its final stop): a duration past its bound says so (`99999d` was
 * "neither a duration nor a time", though it is a duration, longer than 100 years: the audit probe).
 */
export function sinceRefusal(text: string): string {
  const duration = parseDuration(text)
  if (!duration.ok && DURATION_SHAPE.test(text.trim())) return `since "${text}": ${duration.message.replace(/^invalid duration "[^"]*": /, '')}`
  return `since "${text}" is neither a duration (1h) nor a time (2026-11-26T10:00:00Z)`
}

/** What reads as a duration, whatever its size. */
const DURATION_SHAPE = /^\d+(?:\.\d+)?(?:ms|s|m|h|d)$/i

export class AuditQueryError extends Error {}

/** The end keptValue gives a value it cut (errors/truncate.ts). */
const CUT_END = /…\(truncated, \d+ chars\)$/

/**
 * A text filter's value as the log keeps its field's values: a client's field cut at its bound
 * (record.ts keptValue), unless it is given as the log shows it, cut already (what README said to
 * search by: a subject past 256 characters, searched as the token names it, found none of its
 * records; the audit probe).
 */
function keptFilterText(field: FieldSpec, text: string): string {
  if (field.client === undefined || text.length <= field.client) return storedText(text)
  const end = CUT_END.exec(text)
  return end !== null && end.index <= field.client ? storedText(text) : keptValue(text, field.client)
}

/** A text filter (`route`, `principal`, …) as the log keeps what it selects: the console's figures read theirs through it too. */
export function filterText(name: FilterName, text: string): string {
  const field = FILTERS.find((f) => f.filter === name)
  return field === undefined ? storedText(text) : keptFilterText(field, text)
}

/** A filter's value as its field's kind holds it. */
function filterValue(field: FieldSpec & { filter: FilterName }, text: string): string | number {
  switch (field.kind) {
    case 'decision':
      if (text !== 'allow' && text !== 'deny' && text !== 'error') throw new AuditQueryError(`${field.filter} is allow, deny or error`)
      return text
    case 'integer':
    case 'count': {
      // Digits only: Number() reads '' as 0 (`?status=` selected the records of status 0) and takes 0x1f4.
      const value = /^-?\d{1,10}$/.test(text.trim()) ? Number(text) : Number.NaN
      // PostgreSQL's integer columns hold 32 bits: a larger number would fail the query (500), not select nothing.
      if (!Number.isInteger(value) || Math.abs(value) > 2_147_483_647) throw new AuditQueryError(`${field.filter} must be a whole number (32 bits)`)
      // No record has another: status=1000 answered [] as if none had matched (an adversarial probe).
      // 0 is a record no response went with (the chain's restart marker).
      if (field.filter === 'status' && value !== 0 && (value < 100 || value > 599)) throw new AuditQueryError('status is an HTTP status, from 100 to 599 (or 0: a record no response went with)')
      return value
    }
    default:
      // As the log keeps a value (NUL and an unpaired surrogate as U+FFFD): PostgreSQL text cannot
      // hold NUL, so `?principal=a%00b` was a 500, and it found nothing on SQLite (found by the
      // operator probe). Cut at the field's bound as the record is (keptFilterText).
      return keptFilterText(field, text)
  }
}

/** What a search reads; anything else is refused, not passed over. */
const QUERY_NAMES: readonly string[] = ['since', 'until', ...FILTERS.map((field) => field.filter), 'limit']

/**
 * The filters of `bouncer audit` (flags) and GET /api/audit (query parameters), checked once. A
 * name that is none of them is refused: GET /api/audit?principle=alice answered every caller's
 * records, as if the misspelled filter had selected them.
 */
export function parseAuditQuery(input: Partial<Record<'since' | 'until' | 'limit' | FilterName, string>>, maxLimit = Number.POSITIVE_INFINITY): AuditQuery {
  const unknown = Object.keys(input).find((name) => !QUERY_NAMES.includes(name))
  if (unknown !== undefined) throw new AuditQueryError(`${JSON.stringify(unknown)} is not a filter: ${QUERY_NAMES.join(', ')}`)
  // Digits only, and a number exact as a double: `bouncer audit --limit 99999999999999999999` was
  // bound as 1e20, which SQLite refused as "datatype mismatch" (said of the log file, as damage) and
  // PostgreSQL as out of range for bigint (an internal error), where it is the user's typing (a probe).
  const limitText = (input.limit ?? '50').trim()
  const limit = /^\d{1,16}$/.test(limitText) ? Number(limitText) : Number.NaN
  if (!Number.isSafeInteger(limit) || limit < 1 || limit > maxLimit) throw new AuditQueryError(`limit must be a whole number from 1${Number.isFinite(maxLimit) ? ` to ${maxLimit}` : ''}`)
  const query: AuditQuery = { limit }
  // An empty filter is no filter, as the console reads its empty fields (it sends none): `principal=`
  // selected the records whose subject is "" (none), where `status=` was refused (an adversarial probe).
  const given = (text: string | undefined): text is string => text !== undefined && text.trim() !== ''
  if (given(input.since)) {
    query.sinceMs = parseSince(input.since)
    if (query.sinceMs === undefined) throw new AuditQueryError(sinceRefusal(input.since))
  }
  if (given(input.until)) {
    query.untilMs = parseUntil(input.until)
    if (query.untilMs === undefined) throw new AuditQueryError(`until "${input.until}" is not a time`)
  }
  // Said, not answered with no records: a range that ends before it starts is a typing slip (GET
  // /api/audit and bouncer audit answered [] and 'no records match', where the console said this).
  if (query.sinceMs !== undefined && query.untilMs !== undefined && query.sinceMs > query.untilMs) throw new AuditQueryError('since must not be after until')
  const filters = query as Record<string, unknown>
  for (const field of FILTERS) {
    const text = input[field.filter]
    if (given(text)) filters[field.filter] = filterValue(field, text)
  }
  return query
}

/** The WHERE clause of a search: SQLite compares time_ms and binds `?`, PostgreSQL `time` and `$n`. */
function whereClause(query: AuditQuery, dialect: 'sqlite' | 'postgres'): { sql: string; params: unknown[] } {
  const conditions: string[] = []
  const params: unknown[] = []
  const add = (column: string, operator: string, value: unknown) => {
    params.push(value)
    conditions.push(`${column} ${operator} ${dialect === 'sqlite' ? '?' : `$${params.length}`}`)
  }
  const time = (ms: number) => (dialect === 'sqlite' ? ms : new Date(ms))
  const timeColumn = dialect === 'sqlite' ? 'time_ms' : 'time'
  if (query.sinceMs !== undefined) add(timeColumn, '>=', time(query.sinceMs))
  if (query.untilMs !== undefined) add(timeColumn, '<=', time(query.untilMs))
  for (const field of FILTERS) {
    const value = query[field.filter]
    if (value !== undefined) add(columnOf(field), '=', value)
  }
  // The term of SQLite's partial index of refusals (sinks/sqlite.ts): the planner uses the index only when the query says it.
  if (dialect === 'sqlite' && query.decision !== undefined && query.decision !== 'allow') conditions.push(`decision <> 'allow'`)
  return { sql: conditions.length > 0 ? `WHERE ${conditions.join(' AND ')}` : '', params }
}

/**
 * A filter on a field added after the first version, over a log no gateway of this version has
 * migrated yet: its column is missing, so no record has a value there and none matches (a probe
 * found `bouncer audit --actor` an internal error on such a log).
 */
function filtersUnmigratedColumn(query: AuditQuery, err: unknown): boolean {
  const missingColumn = (err as { code?: string }).code === '42703' || /no such column/.test((err as Error).message ?? '')
  return missingColumn && FILTERS.some((field) => field.added === true && query[field.filter] !== undefined)
}

/** How a command reads a SQLite log: `asItStands`, as openSqlite's. */
export interface LogReading {
  asItStands?: (why: string) => void
  /**
   * A PostgreSQL log's statements each end at the source's `readTimeoutMs`, as a search's do: the
   * console's verify, in the gateway's process, whose connections the sink and the datasets share.
   * `bouncer audit verify` is not bounded (its caller is there to stop it).
   */
  bounded?: boolean
}

/**
 * A search of a SQLite log. Chains (server.workers, the command line's) share seqs, so two records
 * can share their millisecond and seq: `id` orders them last, byte-wise, as PostgreSQL's `COLLATE "C"`
 * does, so both sinks list them alike (SQLite's were in the order they were written, PostgreSQL's by
 * id). The time index still gives the order; SQLite sorts each millisecond's records alone ("USE TEMP
 * B-TREE FOR LAST 2 TERMS OF ORDER BY"), as it did by seq. LIMIT is bound, not written in: with a
 * literal LIMIT and no WHERE its planner sorted the whole table for a third term (300,000 records:
 * 1.4 s a page), with a bound one it scans the index (0.5 ms; aud5-search-tie-order holds the plans).
 */
export function sqliteSearch(query: AuditQuery): { sql: string; params: Array<string | number> } {
  const { sql, params } = whereClause(query, 'sqlite')
  return {
    sql: `SELECT * FROM audit_records ${sql} ORDER BY time_ms DESC, seq DESC, id DESC LIMIT ? OFFSET ?`,
    params: [...(params as Array<string | number>), query.limit, query.offset ?? 0],
  }
}

/*
 * PostgreSQL's top-N sort chose among ties by its LIMIT, so its cursor pages skipped such records and
 * showed others twice (a probe): there `id` orders them last too, a sort of the ties alone after the
 * time index.
 */
export async function searchAudit(source: AuditSource, query: AuditQuery, reading: LogReading = {}): Promise<AuditRecord[]> {
  if (source.type === 'sqlite') {
    const db = openSqlite(source.path, { readOnly: true, asItStands: reading.asItStands })
    try {
      const { sql, params } = sqliteSearch(query)
      const rows = db.prepare(sql).all(...params)
      return (rows as Array<Record<string, unknown>>).map(recordFromRow)
    } catch (err) {
      if (filtersUnmigratedColumn(query, err)) return []
      throw err
    } finally {
      db.close()
    }
  }
  const client = await connectAuditReader(source.url, source.readTimeoutMs)
  try {
    const { sql, params } = whereClause(query, 'postgres')
    const result = await client.query(`SELECT * FROM ${source.schema}.audit_records ${sql} ORDER BY time DESC, seq DESC, id COLLATE "C" DESC LIMIT $${params.length + 1} OFFSET $${params.length + 2}`, [...params, query.limit, query.offset ?? 0]).catch((err: unknown) => {
      // No gateway has created the schema or its table yet: nothing written, as for a SQLite file not made yet.
      if ((err as { code?: string }).code === '42P01') throw new NoAuditLog(`the audit log in PostgreSQL schema ${source.schema} has no records yet`)
      if (filtersUnmigratedColumn(query, err)) return { rows: [] }
      throw err
    })
    return result.rows.map(recordFromPgRow)
  } finally {
    await client.end()
  }
}
