// Reading the audit log back: search (newest first) and chain verification, for `bouncer audit`
// and GET /api/audit. They read the first queryable sink: SQLite (read-only, safe beside a running
// gateway thanks to WAL), else PostgreSQL.
import { parseDuration, type AuditConfig } from '../config/index.ts'
import { GENESIS_HASH, hashOf, type AuditRecord } from './record.ts'
import { loadPg, recordFromPgRow } from './sinks/postgres.ts'
import { openSqlite, recordFromRow } from './sinks/sqlite.ts'

export type AuditSource = { type: 'sqlite'; path: string } | { type: 'postgres'; url: string; schema: string }

export function auditSourceOf(config: AuditConfig): AuditSource | null {
  for (const sink of config.sinks) {
    if (sink.type === 'sqlite') return { type: 'sqlite', path: sink.path }
    if (sink.type === 'postgres') return { type: 'postgres', url: sink.url, schema: sink.schema }
  }
  return null
}

export interface AuditQuery {
  sinceMs?: number
  untilMs?: number
  principal?: string
  route?: string
  decision?: 'allow' | 'deny' | 'error'
  status?: number
  limit: number
}

/** `--since 1h` or `--since 2026-11-26T10:00:00Z`. */
export function parseSince(text: string, now = Date.now()): number | undefined {
  const duration = parseDuration(text)
  if (duration.ok) return now - duration.value
  const time = Date.parse(text)
  return Number.isNaN(time) ? undefined : time
}

export class AuditQueryError extends Error {}

/** The filters of `bouncer audit` (flags) and GET /api/audit (query parameters), checked once. */
export function parseAuditQuery(input: Partial<Record<'since' | 'until' | 'principal' | 'route' | 'decision' | 'status' | 'limit', string>>, maxLimit = Number.POSITIVE_INFINITY): AuditQuery {
  const limit = Number(input.limit ?? 50)
  if (!Number.isInteger(limit) || limit < 1 || limit > maxLimit) throw new AuditQueryError(`limit must be a whole number from 1${Number.isFinite(maxLimit) ? ` to ${maxLimit}` : ''}`)
  const query: AuditQuery = { limit }
  if (input.since !== undefined) {
    query.sinceMs = parseSince(input.since)
    if (query.sinceMs === undefined) throw new AuditQueryError(`since "${input.since}" is neither a duration (1h) nor a time (2026-11-26T10:00:00Z)`)
  }
  if (input.until !== undefined) {
    query.untilMs = Date.parse(input.until)
    if (Number.isNaN(query.untilMs)) throw new AuditQueryError(`until "${input.until}" is not a time`)
  }
  if (input.decision !== undefined) {
    if (input.decision !== 'allow' && input.decision !== 'deny' && input.decision !== 'error') throw new AuditQueryError('decision is allow, deny or error')
    query.decision = input.decision
  }
  if (input.status !== undefined) {
    query.status = Number(input.status)
    if (!Number.isInteger(query.status)) throw new AuditQueryError('status must be a number')
  }
  if (input.principal !== undefined) query.principal = input.principal
  if (input.route !== undefined) query.route = input.route
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
  if (query.principal !== undefined) add('subject', '=', query.principal)
  if (query.route !== undefined) add('route', '=', query.route)
  if (query.decision !== undefined) add('decision', '=', query.decision)
  if (query.status !== undefined) add('status', '=', query.status)
  return { sql: conditions.length > 0 ? `WHERE ${conditions.join(' AND ')}` : '', params }
}

export async function searchAudit(source: AuditSource, query: AuditQuery): Promise<AuditRecord[]> {
  if (source.type === 'sqlite') {
    const db = openSqlite(source.path, { readOnly: true })
    try {
      const { sql, params } = whereClause(query, 'sqlite')
      const rows = db.prepare(`SELECT * FROM audit_records ${sql} ORDER BY time_ms DESC, seq DESC LIMIT ?`).all(...(params as Array<string | number>), query.limit)
      return (rows as Array<Record<string, unknown>>).map(recordFromRow)
    } finally {
      db.close()
    }
  }
  const client = new (loadPg().Client)({ connectionString: source.url, connectionTimeoutMillis: 5_000 })
  await client.connect()
  try {
    const { sql, params } = whereClause(query, 'postgres')
    const result = await client.query(`SELECT * FROM ${source.schema}.audit_records ${sql} ORDER BY time DESC, seq DESC LIMIT $${params.length + 1}`, [...params, query.limit])
    return result.rows.map(recordFromPgRow)
  } finally {
    await client.end()
  }
}

export interface VerifyResult {
  ok: boolean
  checked: number
  chains: number
  /** The first record that does not match, and why. */
  problem?: { chain: string; seq: number; id: string; time: string; reason: string }
}

const PAGE = 5_000

/**
 * Walks every chain in seq order from its start (64 zeros, or the retention checkpoint) and checks
 * each record's hash against its content and its prev_hash against the record before: an edited,
 * deleted, inserted or reordered record breaks one of the two, and is named.
 */
export async function verifyAudit(source: AuditSource): Promise<VerifyResult> {
  const reader = await chainReader(source)
  try {
    let checked = 0
    const chains = await reader.chains()
    for (const { chain, start } of chains) {
      let prevHash = start?.hash ?? GENESIS_HASH
      let prevSeq = start?.seq ?? 0
      for (let after = prevSeq; ; ) {
        const page = await reader.page(chain, after, PAGE)
        if (page.length === 0) break
        for (const { seq, record } of page) {
          const problem = (reason: string): VerifyResult => ({ ok: false, checked, chains: chains.length, problem: { chain, seq, id: record.id, time: record.time, reason } })
          if (seq !== prevSeq + 1) {
            return problem(`record${seq - prevSeq > 2 ? 's' : ''} ${prevSeq + 1}${seq - prevSeq > 2 ? `–${seq - 1}` : ''} before it ${seq - prevSeq > 2 ? 'are' : 'is'} missing (deleted)`)
          }
          const { hash, ...rest } = record
          if (hashOf(rest) !== hash) return problem('its content does not match its hash (the record was edited)')
          if (record.prev_hash !== prevHash) return problem('its prev_hash does not match the record before it (records were reordered or replaced)')
          prevHash = hash
          prevSeq = seq
          checked++
        }
        after = prevSeq
      }
    }
    return { ok: true, checked, chains: chains.length }
  } finally {
    await reader.close()
  }
}

interface ChainReader {
  chains(): Promise<Array<{ chain: string; start: { seq: number; hash: string } | null }>>
  page(chain: string, afterSeq: number, size: number): Promise<Array<{ seq: number; record: AuditRecord }>>
  close(): Promise<void>
}

async function chainReader(source: AuditSource): Promise<ChainReader> {
  if (source.type === 'sqlite') {
    const db = openSqlite(source.path, { readOnly: true })
    return {
      async chains() {
        const rows = db.prepare('SELECT no, chain FROM audit_chains').all() as Array<{ no: number; chain: string }>
        return rows
          .map(({ no, chain }) => ({ chain, no, start: (db.prepare('SELECT seq, hash FROM audit_checkpoint WHERE chain = ?').get(no) as { seq: number; hash: string } | undefined) ?? null }))
          .filter(({ no, start }) => start !== null || db.prepare('SELECT 1 FROM audit_records WHERE chain = ? LIMIT 1').get(no) !== undefined)
      },
      async page(chain, afterSeq, size) {
        const no = (db.prepare('SELECT no FROM audit_chains WHERE chain = ?').get(chain) as { no: number }).no
        const rows = db.prepare('SELECT * FROM audit_records WHERE chain = ? AND seq > ? ORDER BY seq LIMIT ?').all(no, afterSeq, size) as Array<Record<string, unknown>>
        return rows.map((row) => ({ seq: Number(row.seq), record: recordFromRow(row) }))
      },
      async close() {
        db.close()
      },
    }
  }
  const client = new (loadPg().Client)({ connectionString: source.url, connectionTimeoutMillis: 5_000 })
  await client.connect()
  const { schema } = source
  return {
    async chains() {
      const { rows } = await client.query(`SELECT chain FROM ${schema}.audit_records GROUP BY chain UNION SELECT chain FROM ${schema}.audit_checkpoint`)
      const out = []
      for (const { chain } of rows as Array<{ chain: string }>) {
        const checkpoint = await client.query(`SELECT seq, hash FROM ${schema}.audit_checkpoint WHERE chain = $1`, [chain])
        out.push({ chain, start: checkpoint.rows[0] ? { seq: Number(checkpoint.rows[0].seq), hash: checkpoint.rows[0].hash as string } : null })
      }
      return out
    },
    async page(chain, afterSeq, size) {
      const { rows } = await client.query(`SELECT * FROM ${schema}.audit_records WHERE chain = $1 AND seq > $2 ORDER BY seq LIMIT $3`, [chain, afterSeq, size])
      return rows.map((row: Record<string, unknown>) => ({ seq: Number(row.seq), record: recordFromPgRow(row) }))
    },
    async close() {
      await client.end()
    },
  }
}
