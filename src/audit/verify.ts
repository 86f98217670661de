// `bouncer audit verify`: walks every chain of the first queryable sink in seq order from its start
// (64 zeros, or the retention checkpoint) and checks each record's hash against its content and its
// prev_hash against the record before: an edited, deleted, inserted or reordered record breaks one
// of the two, and is named. A chain's `chain_restarted` record (chain-head.ts) is reported too.
import { CHAIN_RESTARTED } from './chain-head.ts'
import { GENESIS_HASH, hashOf, type AuditRecord } from './record.ts'
import type { AuditSource } from './search.ts'
import { loadPg, recordFromPgRow } from './sinks/postgres.ts'
import { openSqlite, recordFromRow } from './sinks/sqlite.ts'

/** A record that does not match: the first of its chain. */
export interface RecordProblem {
  chain: string
  seq: number
  id: string
  time: string
  reason: string
}

/** A chain that began because an earlier one could not be continued. */
export interface ChainRestart {
  chain: string
  id: string
  time: string
  detail: string | null
}

export interface VerifyResult {
  ok: boolean
  /** Records whose hash and link were checked (up to the first problem of each chain). */
  checked: number
  chains: number
  problems: RecordProblem[]
  restarts: ChainRestart[]
}

const PAGE = 5_000

interface ChainWalk {
  checked: number
  problem: RecordProblem | null
  restarts: ChainRestart[]
}

function missingBefore(seq: number, prevSeq: number): string {
  const many = seq - prevSeq > 2
  return `record${many ? 's' : ''} ${prevSeq + 1}${many ? `–${seq - 1}` : ''} before it ${many ? 'are' : 'is'} missing (deleted)`
}

async function walk(reader: ChainReader, chain: string, start: { seq: number; hash: string } | null): Promise<ChainWalk> {
  const out: ChainWalk = { checked: 0, problem: null, restarts: [] }
  let prevHash = start?.hash ?? GENESIS_HASH
  let prevSeq = start?.seq ?? 0
  for (;;) {
    const page = await reader.page(chain, prevSeq, PAGE)
    if (page.length === 0) return out
    for (const entry of page) {
      const { seq } = entry
      if (!('record' in entry)) return { ...out, problem: { chain, seq, id: entry.id, time: entry.time, reason: `it cannot be read (${entry.unreadable})` } }
      const { record } = entry
      const problem = (reason: string): ChainWalk => ({ ...out, problem: { chain, seq, id: record.id, time: record.time, reason } })
      if (seq !== prevSeq + 1) return problem(missingBefore(seq, prevSeq))
      const { hash, ...rest } = record
      if (hashOf(rest) !== hash) return problem('its content does not match its hash (the record was edited)')
      if (record.prev_hash !== prevHash) return problem('its prev_hash does not match the record before it (records were reordered or replaced)')
      if (record.code === CHAIN_RESTARTED) out.restarts.push({ chain, id: record.id, time: record.time, detail: record.detail })
      prevHash = hash
      prevSeq = seq
      out.checked++
    }
  }
}

/** Checks every chain; a problem in one does not stop the others from being checked. */
export async function verifyAudit(source: AuditSource): Promise<VerifyResult> {
  const reader = await chainReader(source)
  try {
    const chains = await reader.chains()
    const result: VerifyResult = { ok: true, checked: 0, chains: chains.length, problems: [], restarts: [] }
    for (const { chain, start } of chains) {
      const walked = await walk(reader, chain, start)
      result.checked += walked.checked
      result.restarts.push(...walked.restarts)
      if (walked.problem) result.problems.push(walked.problem)
    }
    result.ok = result.problems.length === 0
    return result
  } finally {
    await reader.close()
  }
}

/** A stored row as a record, or why it is not one (a column damaged beyond parsing). */
type PageEntry = { seq: number; record: AuditRecord } | { seq: number; id: string; time: string; unreadable: string }

function entryOf(row: Record<string, unknown>, toRecord: (row: Record<string, unknown>) => AuditRecord): PageEntry {
  try {
    return { seq: Number(row.seq), record: toRecord(row) }
  } catch (err) {
    return { seq: Number(row.seq), id: String(row.id), time: String(row.time), unreadable: (err as Error).message }
  }
}

interface ChainReader {
  chains(): Promise<Array<{ chain: string; start: { seq: number; hash: string } | null }>>
  page(chain: string, afterSeq: number, size: number): Promise<PageEntry[]>
  close(): Promise<void>
}

async function chainReader(source: AuditSource): Promise<ChainReader> {
  if (source.type === 'sqlite') {
    const db = openSqlite(source.path, { readOnly: true })
    return {
      async chains() {
        const rows = db.prepare('SELECT no, chain FROM audit_chains ORDER BY no').all() as Array<{ no: number; chain: string }>
        return rows
          .map(({ no, chain }) => ({ chain, no, start: (db.prepare('SELECT seq, hash FROM audit_checkpoint WHERE chain = ?').get(no) as { seq: number; hash: string } | undefined) ?? null }))
          .filter(({ no, start }) => start !== null || db.prepare('SELECT 1 FROM audit_records WHERE chain = ? LIMIT 1').get(no) !== undefined)
      },
      async page(chain, afterSeq, size) {
        const no = (db.prepare('SELECT no FROM audit_chains WHERE chain = ?').get(chain) as { no: number }).no
        const rows = db.prepare('SELECT * FROM audit_records WHERE chain = ? AND seq > ? ORDER BY seq LIMIT ?').all(no, afterSeq, size) as Array<Record<string, unknown>>
        return rows.map((row) => entryOf(row, recordFromRow))
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
      // Oldest chain first, as SQLite lists them.
      const { rows } = await client.query(`SELECT chain FROM (SELECT chain, min(time) AS since FROM ${schema}.audit_records GROUP BY chain
        UNION ALL SELECT chain, NULL FROM ${schema}.audit_checkpoint) AS c GROUP BY chain ORDER BY min(since) NULLS FIRST, chain`)
      const out = []
      for (const { chain } of rows as Array<{ chain: string }>) {
        const checkpoint = await client.query(`SELECT seq, hash FROM ${schema}.audit_checkpoint WHERE chain = $1`, [chain])
        out.push({ chain, start: checkpoint.rows[0] ? { seq: Number(checkpoint.rows[0].seq), hash: checkpoint.rows[0].hash as string } : null })
      }
      return out
    },
    async page(chain, afterSeq, size) {
      const { rows } = await client.query(`SELECT * FROM ${schema}.audit_records WHERE chain = $1 AND seq > $2 ORDER BY seq LIMIT $3`, [chain, afterSeq, size])
      return rows.map((row: Record<string, unknown>) => entryOf(row, recordFromPgRow))
    },
    async close() {
      await client.end()
    },
  }
}
