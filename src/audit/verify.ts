// `bouncer audit verify`: walks every chain of the first queryable sink in seq order from its start
// (64 zeros, or the retention checkpoint) and checks each record's hash against its content and its
// prev_hash against the record before: an edited, deleted, inserted or reordered record breaks one
// of the two, and is named. A chain's `chain_restarted` record (chain-head.ts) is reported too.
//
// With anchors (the checkpoint file and the keys), each chain is also held against its latest
// signed checkpoint (checkpoint.ts), from the file or the sink's own table: a log that ends before
// the checkpoint's count lacks its newest records, and the record at that count must be the one
// signed. A checkpoint whose signature does not verify is named as forged. A chain that starts
// after record 1 must start where a signed retention cut left it, a cut that deleted no record
// younger than the retention it was signed under (checkCut).
import type { KeyObject } from 'node:crypto'
import { CHAIN_RESTARTED, RECORDS_LOST } from './chain-head.ts'
import { checkpointFrom, checkpointProblem, cutFrom, cutProblem, latestByChain, readCheckpointFile, type Checkpoint, type RetentionCut } from './checkpoint.ts'
import { GENESIS_HASH, hashOf, type AuditRecord } from './record.ts'
import type { AuditSource, LogReading } from './search.ts'
import type { ChainRestart, CutFinding, FoundCheckpoint, RecordProblem, VerifyResult } from './chain-shapes.ts'
import { loadPg } from '../collections/index.ts'
import { connectAuditReader, recordFromPgRow } from './sinks/postgres.ts'
import { NoAuditLog, openSqlite, recordFromRow } from './sinks/sqlite.ts'

export type { ChainRestart, CutFinding, FoundCheckpoint, RecordProblem, Truncation, VerifyResult } from './chain-shapes.ts'

/** Where checkpoints are kept apart from the records, and the keys that sign them. */
export interface Anchors {
  /** The checkpoint file; the sink's audit_head_checkpoints table is read too. */
  file: string
  /** Public keys by kid (checkpoint-key.ts). */
  keys: ReadonlyMap<string, KeyObject>
  /** Why there is no key, when there is none. */
  keyProblem: string | null
  /** The config's `audit.retention`: what a cut signed without its own retention is held against. */
  retentionMs?: number
}

/** Where a chain starts: where retention left it (its row's cut, when signed). */
interface ChainStart {
  seq: number
  hash: string
  cut: RetentionCut | null
}

/**
 * Clocks differ between the gateways that cut and the host that verifies: a cut that deleted a
 * record up to this much younger than `retention` is not named.
 */
const EARLY_TOLERANCE_MS = 60_000

/**
 * What verify cannot vouch for in a chain's start, if anything: its row unsigned, its signature not
 * good, or a cut made too early. Early is judged by the retention the cut was signed under, at the
 * time it was made: held against this config's retention now, a genuine cut failed verify after
 * `retention` was lengthened (30d to 90d: every chain's last cut, for 60 days). A cut signed before
 * it carried its retention is held against the config's.
 */
function checkCut(chain: string, start: ChainStart, anchors: Anchors, now: number): CutFinding | null {
  const { cut } = start
  if (!cut) return { chain, seq: start.seq, problem: 'unsigned', cut: null }
  const problem = cutProblem(cut, anchors.keys)
  if (problem) return { chain, seq: start.seq, problem, cut }
  const allowedUntil = cut.retention !== undefined ? Date.parse(cut.time) - cut.retention : anchors.retentionMs !== undefined ? now - anchors.retentionMs : undefined
  if (allowedUntil !== undefined && !(Date.parse(cut.newest) <= allowedUntil + EARLY_TOLERANCE_MS)) return { chain, seq: start.seq, problem: 'early', cut }
  return null
}

/**
 * Whether a cut finding fails verify: forged, or early. An unsigned cut or one signed by a key
 * verify lacks may be an older gateway's or another instance's: those fail only --strict.
 */
export function cutFails(finding: CutFinding): boolean {
  return finding.problem === 'bad signature' || finding.problem === 'early'
}

const PAGE = 5_000

interface ChainWalk {
  checked: number
  problem: RecordProblem | null
  restarts: ChainRestart[]
  losses: ChainRestart[]
  /** At the checkpoint's count: the record there (null when the walk did not reach it). */
  atCheckpoint: { id: string; hash: string } | null
  /** The time of the newest record read (the one with the problem, when there is one). */
  newest: string | null
}

function missingBefore(seq: number, prevSeq: number): string {
  const many = seq - prevSeq > 2
  return `record${many ? 's' : ''} ${prevSeq + 1}${many ? `–${seq - 1}` : ''} before it ${many ? 'are' : 'is'} missing (deleted)`
}

async function walk(reader: ChainReader, chain: string, start: ChainStart | null, checkpointAt: number): Promise<ChainWalk> {
  const out: ChainWalk = { checked: 0, problem: null, restarts: [], losses: [], atCheckpoint: null, newest: null }
  let prevHash = start?.hash ?? GENESIS_HASH
  let prevSeq = start?.seq ?? 0
  for (;;) {
    // A turn of the event loop between pages: node:sqlite reads synchronously, so a verify on the
    // audit side thread held every job queued behind it for its whole length (a probe: an admin
    // API key revocation's answer and audit record, and every console search, waited 4-5 s
    // behind the console's Verify of 300,000 records; a million take 17 s).
    await new Promise<void>((resolve) => setImmediate(resolve))
    const page = await reader.page(chain, prevSeq, PAGE)
    if (page.length === 0) return out
    for (const entry of page) {
      const { seq } = entry
      if (!('record' in entry)) return { ...out, newest: entry.time, problem: { chain, seq, id: entry.id, time: entry.time, reason: entry.reason } }
      const { record } = entry
      const problem = (reason: string): ChainWalk => ({ ...out, newest: record.time, problem: { chain, seq, id: record.id, time: record.time, reason } })
      // A seq read again (its uniqueness dropped and a row copied) is no gap: "record 6 before it is missing" named a duplicated 5 (a probe).
      if (seq <= prevSeq) return problem(`its seq ${seq} comes again after record ${prevSeq} (a record was duplicated or renumbered)`)
      if (seq !== prevSeq + 1) return problem(missingBefore(seq, prevSeq))
      const { hash, ...rest } = record
      if (hashOf(rest) !== hash) return problem('its content does not match its hash (the record was edited)')
      if (record.prev_hash !== prevHash) return problem('its prev_hash does not match the record before it (records were reordered or replaced)')
      if (record.code === CHAIN_RESTARTED) out.restarts.push({ chain, id: record.id, time: record.time, detail: record.detail })
      if (record.code === RECORDS_LOST) out.losses.push({ chain, id: record.id, time: record.time, detail: record.detail })
      if (seq === checkpointAt) out.atCheckpoint = { id: record.id, hash }
      prevHash = hash
      prevSeq = seq
      out.newest = record.time
      out.checked++
    }
  }
}

/** Every checkpoint of the file and the sink's table: the latest good one per chain, and the forged ones. */
async function gatherCheckpoints(anchors: Anchors, reader: ChainReader, result: VerifyResult): Promise<Map<string, FoundCheckpoint>> {
  const file = readCheckpointFile(anchors.file)
  result.damagedCheckpointLines = file.damaged
  const found: FoundCheckpoint[] = [
    ...file.checkpoints.map((checkpoint) => ({ checkpoint, source: `the checkpoint file ${anchors.file}` })),
    ...(await reader.checkpoints()).map((checkpoint) => ({ checkpoint, source: `the sink's audit_head_checkpoints table` })),
  ]
  // No key here (verify run on a host without it) is as another instance's key: the records are
  // walked, each chain noted as not anchored and each signed cut as not checked, and --strict fails
  // (cli/audit.ts). It failed verify outright, though every record's hash had been checked.
  if (found.length > 0 && anchors.keys.size === 0) {
    result.uncheckable = `${found.length} checkpoint${found.length === 1 ? '' : 's'} but no key to check them: ${anchors.keyProblem ?? 'no key found'}`
    return new Map()
  }
  const good: FoundCheckpoint[] = []
  for (const f of found) {
    const problem = checkpointProblem(f.checkpoint, anchors.keys)
    if (problem === 'bad signature') result.forged.push(f)
    else if (problem === 'unknown key') result.unknownKeys++
    else good.push(f)
  }
  const latest = latestByChain(good.map((f) => f.checkpoint))
  return new Map(good.filter((f) => latest.get(f.checkpoint.chain) === f.checkpoint).map((f) => [f.checkpoint.chain, f]))
}

/** Checks every chain; a problem in one does not stop the others from being checked. */
export async function verifyAudit(source: AuditSource, anchors?: Anchors, reading: LogReading = {}): Promise<VerifyResult> {
  const reader = await chainReader(source, reading).catch((err: unknown) => {
    // No log at all, where checkpoints say it had records: every one of them is missing. Before, verify
    // said "there is no audit log at … yet" of a deleted log, and the console's Verify now said ok.
    if (err instanceof NoAuditLog && anchors && readCheckpointFile(anchors.file).checkpoints.length > 0) return EMPTY_LOG
    throw err
  })
  try {
    const result: VerifyResult = {
      ok: true, checked: 0, chains: 0, problems: [], restarts: [], losses: [], truncations: [], rewritten: [], forged: [], anchored: 0, unanchored: [],
      unknownKeys: 0, uncheckable: null, damagedCheckpointLines: 0, cuts: [], emptied: [],
    }
    const latest = anchors ? await gatherCheckpoints(anchors, reader, result) : new Map<string, FoundCheckpoint>()
    const chains = await reader.chains()
    // A chain whose every record is gone is known from its checkpoint alone.
    for (const chain of latest.keys()) if (!chains.some((c) => c.chain === chain)) chains.push({ chain, start: null })
    result.chains = chains.length
    if (reader.strays) result.problems.push(...(await reader.strays()))
    for (const { chain, start } of chains) {
      const anchor = latest.get(chain)
      const walked = await walk(reader, chain, start, anchor?.checkpoint.count ?? 0)
      result.checked += walked.checked
      result.restarts.push(...walked.restarts)
      result.losses.push(...walked.losses)
      if (walked.problem) result.problems.push(walked.problem)
      if (start && walked.checked === 0 && !walked.problem) result.emptied?.push({ chain, seq: start.seq, cut: start.cut })
      if (!anchors) continue
      const cutFinding = start ? checkCut(chain, start, anchors, Date.now()) : null
      if (cutFinding) result.cuts.push(cutFinding)
      if (!anchor) {
        if (walked.checked > 0 || walked.problem) result.unanchored.push({ chain, newest: walked.newest })
        continue
      }
      const end = await reader.end(chain)
      const { count, hash } = anchor.checkpoint
      if (end < count) result.truncations.push({ ...anchor, chain, end, missing: count - end })
      else if (walked.atCheckpoint && walked.atCheckpoint.hash !== hash) result.rewritten.push({ ...anchor, chain, id: walked.atCheckpoint.id })
      else if (start && start.seq === count && start.hash !== hash) result.rewritten.push({ ...anchor, chain, id: '(deleted by retention)' })
      else if (walked.atCheckpoint || (start && start.seq >= count)) result.anchored++
    }
    result.ok = result.problems.length === 0 && result.truncations.length === 0 && result.rewritten.length === 0 && result.forged.length === 0 && !result.cuts.some(cutFails)
    return result
  } finally {
    await reader.close()
  }
}

/** A stored row as a record, or what is wrong with it (a column damaged beyond parsing). */
type PageEntry = { seq: number; record: AuditRecord } | { seq: number; id: string; time: string; reason: string }

function entryOf(row: Record<string, unknown>, toRecord: (row: Record<string, unknown>) => AuditRecord): PageEntry {
  try {
    return { seq: Number(row.seq), record: toRecord(row) }
  } catch (err) {
    return { seq: Number(row.seq), id: String(row.id), time: String(row.time), reason: `it cannot be read (${(err as Error).message})` }
  }
}

/**
 * SQLite's `time_ms` is what searches, the console and retention compare; it is not hashed, the
 * record's `time` is. One that says another time hides the record from a search by time.
 */
function sqliteEntryOf(row: Record<string, unknown>): PageEntry {
  if (Number(row.time_ms) !== Date.parse(String(row.time))) {
    return { seq: Number(row.seq), id: String(row.id), time: String(row.time), reason: `its time_ms (${String(row.time_ms)}) is not its time: searches by time would miss it (the row was edited)` }
  }
  return entryOf(row, recordFromRow)
}

/**
 * PostgreSQL keeps `time` to the microsecond and gives it back as a JavaScript Date, to the
 * millisecond: an edit below the millisecond read back as the hashed time. The gateway writes whole
 * milliseconds, so any microseconds past them (`sub_ms`, read beside the row) are an edit.
 */
function pgEntryOf(row: Record<string, unknown>): PageEntry {
  if (Number(row.sub_ms) !== 0) {
    const time = row.time instanceof Date ? row.time.toISOString() : String(row.time)
    return { seq: Number(row.seq), id: String(row.id), time, reason: `its time holds ${String(row.sub_ms)} µs past the millisecond it was written with (the row was edited)` }
  }
  return entryOf(row, recordFromPgRow)
}

interface ChainReader {
  chains(): Promise<Array<{ chain: string; start: ChainStart | null }>>
  /** Records no chain holds (SQLite: a chain number audit_chains does not name). */
  strays?(): Promise<RecordProblem[]>
  page(chain: string, afterSeq: number, size: number): Promise<PageEntry[]>
  /** The last seq the log has of a chain: its newest record, else where retention left it, else 0. */
  end(chain: string): Promise<number>
  /** The signed checkpoints kept in the sink (none before the table exists). */
  checkpoints(): Promise<Checkpoint[]>
  close(): Promise<void>
}

/** A chain's retention row (SQLite names its chain by number) as where the chain starts. */
function startOf(chain: string, row: Record<string, unknown> | undefined): ChainStart | null {
  if (!row) return null
  return { seq: Number(row.seq), hash: String(row.hash), cut: cutFrom({ ...row, chain }) }
}

/** A log that is not there: no chain, no record, no checkpoint of its own. */
const EMPTY_LOG: ChainReader = {
  chains: async () => [],
  page: async () => [],
  end: async () => 0,
  checkpoints: async () => [],
  close: async () => {},
}

/**
 * The reader reads one snapshot of the log. Read statement by statement, a retention run between the
 * chain's start (its checkpoint) and its records' first page made verify name the records retention
 * had just deleted as "missing (deleted)": tampering, said of an untouched log (a probe).
 */
async function chainReader(source: AuditSource, reading: LogReading): Promise<ChainReader> {
  if (source.type === 'sqlite') {
    const db = openSqlite(source.path, { readOnly: true, asItStands: reading.asItStands })
    // A read transaction: in WAL mode its first read fixes what every later one sees.
    db.exec('BEGIN')
    return {
      async strays() {
        // Rows under a chain number audit_chains does not name: search and export show them, and
        // no chain walk would ever read them. The gateway never writes one.
        const rows = db.prepare(`SELECT r.chain AS no, min(r.seq) AS seq FROM audit_records r WHERE r.chain NOT IN (SELECT no FROM audit_chains) GROUP BY r.chain`).all() as Array<{ no: number; seq: number }>
        return rows.map(({ no, seq }) => {
          const first = db.prepare('SELECT id, time FROM audit_records WHERE chain = ? AND seq = ?').get(no, seq) as { id: string; time: string }
          return { chain: `#${no}`, seq, id: first.id, time: first.time, reason: `it is under chain number ${no}, which audit_chains does not name: a record no chain holds (added outside the gateway)` }
        })
      },
      async chains() {
        const rows = db.prepare('SELECT no, chain FROM audit_chains ORDER BY no').all() as Array<{ no: number; chain: string }>
        // SELECT *: a log no gateway of this version has opened yet has no signed columns.
        return rows
          .map(({ no, chain }) => ({ chain, no, start: startOf(chain, db.prepare('SELECT * FROM audit_checkpoint WHERE chain = ?').get(no) as Record<string, unknown> | undefined) }))
          .filter(({ no, start }) => start !== null || db.prepare('SELECT 1 FROM audit_records WHERE chain = ? LIMIT 1').get(no) !== undefined)
      },
      async page(chain, afterSeq, size) {
        const no = (db.prepare('SELECT no FROM audit_chains WHERE chain = ?').get(chain) as { no: number } | undefined)?.no
        // A chain known from its checkpoint alone, its row in audit_chains deleted with its records: none to walk.
        if (no === undefined) return []
        const rows = db.prepare('SELECT * FROM audit_records WHERE chain = ? AND seq > ? ORDER BY seq LIMIT ?').all(no, afterSeq, size) as Array<Record<string, unknown>>
        return rows.map(sqliteEntryOf)
      },
      async end(chain) {
        const no = (db.prepare('SELECT no FROM audit_chains WHERE chain = ?').get(chain) as { no: number } | undefined)?.no
        if (no === undefined) return 0
        const last = db.prepare('SELECT max(seq) AS seq FROM audit_records WHERE chain = ?').get(no) as { seq: number | null }
        const retained = db.prepare('SELECT seq FROM audit_checkpoint WHERE chain = ?').get(no) as { seq: number } | undefined
        return Math.max(last.seq ?? 0, retained?.seq ?? 0)
      },
      async checkpoints() {
        if (!db.prepare("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'audit_head_checkpoints'").get()) return []
        const rows = db.prepare('SELECT c.chain, h.count, h.id, h.hash, h.time, h.kid, h.sig FROM audit_head_checkpoints h JOIN audit_chains c ON c.no = h.chain').all()
        return rows.map(checkpointFrom).filter((c) => c !== null)
      },
      async close() {
        // SQLite may have ended the read transaction itself (an I/O error mid-read): a COMMIT then
        // threw "cannot commit - no transaction is active" over the read's own error, and the
        // handle was left open (a console Verify's, in the side worker, each time).
        try {
          if (db.isTransaction) db.exec('COMMIT')
        } finally {
          db.close()
        }
      },
    }
  }
  // The console's verify was not bounded: with the table locked, each Verify now waited in PostgreSQL
  // for good, its caller long gone, holding a connection (a probe; the searches' were bounded before).
  const client = reading.bounded ? await connectAuditReader(source.url, source.readTimeoutMs) : new (loadPg().Client)({ connectionString: source.url, connectionTimeoutMillis: 5_000 })
  client.on('error', () => {}) // a connection lost mid-read: the query fails and verify says so, rather than an uncaught event
  try {
    if (!reading.bounded) await client.connect()
    await client.query('BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY')
  } catch (err) {
    await client.end().catch(() => {}) // its connection, and its read's slot (connectAuditReader)
    throw err
  }
  const { schema } = source
  return {
    async chains() {
      // Oldest chain first, as SQLite lists them.
      const { rows } = await client.query(`SELECT chain FROM (SELECT chain, min(time) AS since FROM ${schema}.audit_records GROUP BY chain
        UNION ALL SELECT chain, NULL FROM ${schema}.audit_checkpoint) AS c GROUP BY chain ORDER BY min(since) NULLS FIRST, chain`)
      const out = []
      for (const { chain } of rows as Array<{ chain: string }>) {
        const checkpoint = await client.query(`SELECT * FROM ${schema}.audit_checkpoint WHERE chain = $1`, [chain])
        out.push({ chain, start: startOf(chain, checkpoint.rows[0] as Record<string, unknown> | undefined) })
      }
      return out
    },
    async page(chain, afterSeq, size) {
      const { rows } = await client.query(`SELECT *, (extract(microseconds FROM time)::bigint % 1000) AS sub_ms FROM ${schema}.audit_records
        WHERE chain = $1 AND seq > $2 ORDER BY seq LIMIT $3`, [chain, afterSeq, size])
      return rows.map(pgEntryOf)
    },
    async end(chain) {
      const { rows } = await client.query(`SELECT greatest((SELECT max(seq) FROM ${schema}.audit_records WHERE chain = $1),
        (SELECT seq FROM ${schema}.audit_checkpoint WHERE chain = $1), 0) AS seq`, [chain])
      return Number(rows[0].seq)
    },
    async checkpoints() {
      const { rows: exists } = await client.query('SELECT to_regclass($1) AS t', [`${schema}.audit_head_checkpoints`])
      if (exists[0].t === null) return []
      const { rows } = await client.query(`SELECT chain, count, id, hash, time, kid, sig FROM ${schema}.audit_head_checkpoints`)
      return (rows as unknown[]).map(checkpointFrom).filter((c) => c !== null)
    },
    async close() {
      await client.query('COMMIT').catch(() => {}) // a failed query has ended it already
      await client.end()
    },
  }
}
