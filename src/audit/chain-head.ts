// Where the audit worker's chain goes on at start. The chain's state file (spill_dir/chain.json)
// and every sink that holds the chain must agree on its last record, and that record must hash to
// its hash. When they cannot be read or do not agree, the chain is not continued blindly (its next
// record would link to something nobody can check) nor replaced silently: a new chain starts, and
// its first record — an ordinary record with code `chain_restarted` — says which chain broke and
// why, where `bouncer audit verify` shows it for as long as the record is kept.
import { readFileSync, renameSync, writeFileSync } from 'node:fs'
import { randomUUID } from 'node:crypto'
import type { Checkpoint } from './chain-shapes.ts'
import { chain, GENESIS_HASH, hashOf, type AuditRecord } from './record.ts'
import type { ChainHead, SinkHead } from './sinks/sink.ts'

export const CHAIN_RESTARTED = 'chain_restarted'

export interface ChainState extends ChainHead {
  chain: string
}

export type StateRead = { kind: 'none' } | { kind: 'read'; state: ChainState } | { kind: 'unreadable'; reason: string }

const HASH = /^[0-9a-f]{64}$/

/** The state file: absent on a first start, else it must name a chain and a head. */
/** The chain's state file in a spill directory (the spill files' chain when their lines name none). */
export const CHAIN_STATE_FILE = 'chain.json'

export function readChainState(path: string): StateRead {
  let text: string
  try {
    text = readFileSync(path, 'utf8')
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return { kind: 'none' }
    return { kind: 'unreadable', reason: (err as Error).message }
  }
  let value: Partial<ChainState>
  try {
    value = JSON.parse(text) as Partial<ChainState>
  } catch (err) {
    return { kind: 'unreadable', reason: `not JSON: ${(err as Error).message}` }
  }
  const { chain: id, seq, hash } = value ?? {}
  if (typeof id !== 'string' || id === '' || !Number.isSafeInteger(seq) || (seq as number) < 0 || typeof hash !== 'string' || !HASH.test(hash)) {
    return { kind: 'unreadable', reason: 'it does not hold a chain id, a sequence number and a hash' }
  }
  return { kind: 'read', state: { chain: id, seq: seq as number, hash, id: typeof value.id === 'string' ? value.id : null } }
}

export function writeChainState(path: string, state: ChainState): void {
  writeFileSync(`${path}.tmp`, JSON.stringify(state))
  renameSync(`${path}.tmp`, path)
}

/** A sink's last record of a chain, checked: it must be readable and hash to its hash. */
export function checkedHead(seq: number, read: () => AuditRecord): SinkHead {
  let record: AuditRecord
  try {
    record = read()
  } catch (err) {
    return { seq, hash: '', id: null, problem: `cannot be read (${(err as Error).message})` }
  }
  const { hash, ...rest } = record
  if (typeof hash !== 'string' || !HASH.test(hash)) return { seq, hash: '', id: record.id ?? null, problem: 'has no valid hash' }
  if (hashOf(rest) !== hash) return { seq, hash, id: record.id, problem: 'does not match its hash (it was damaged or edited)' }
  return { seq, hash, id: record.id, problem: null }
}

export type HeadDecision =
  | { kind: 'new' }
  | { kind: 'continue'; head: ChainHead; unstored?: { from: number; to: number } }
  | { kind: 'restart'; previous: string | null; reason: string }

/** What the latest checkpoint this gateway signed of the state's chain vouches for (checkpoint.ts). */
export type SignedHead = Pick<Checkpoint, 'count' | 'hash' | 'time'>

/**
 * What a sink holds of the state's chain at start. `head` null: nothing, or it cannot say — a sink
 * that `readsBack` (SQLite, PostgreSQL; not stdout) and answered holds no record of the chain.
 */
export interface FoundHead {
  sink: string
  head: SinkHead | null
  spilled?: boolean
  unavailable?: boolean
  readsBack?: boolean
}

/**
 * The state file says where the chain is; a sink may only be behind it (the rest waits in its
 * spill file). A sink at it must hold a sound record that agrees with it; one past it holds records
 * this gateway did not number, and the chain restarts rather than take them as its own. And the chain
 * goes on only from at least where its latest signed checkpoint (`signed`) says it had come;
 * 'unreadable': the checkpoint file could not be read, so whether there is one is not known.
 */
export function decideHead(read: StateRead, statePath: string, heads: readonly FoundHead[], signed: SignedHead | null | 'unreadable' = null): HeadDecision {
  const decided = continuation(read, statePath, heads)
  if (decided.kind !== 'continue' || read.kind !== 'read' || signed === 'unreadable') return decided
  if (signed === null) return neverStored(read.state.chain, decided.head, heads) ?? decided
  return heldToCheckpoint(decided.head, read.state.chain, signed) ?? decided
}

/**
 * A worker that ended after numbering its chain's first records and before any sink stored them
 * leaves a state file that names records nothing holds. Continued from there, the sinks held the
 * chain from record N+1 with nothing before it, and `audit verify` failed the honest log for good
 * ("missing (deleted)"). When every sink that reads back answered and holds nothing of the chain,
 * nothing is spilled, and no checkpoint signed any of it, no committed record can have been
 * deleted: a new chain starts, its first record saying so (not this one again from record 1: a
 * stdout sink may have shipped the numbered records, which keep their seqs). A log emptied after
 * a checkpoint keeps its checkpoint and still reads as tampered; one emptied before its chain's
 * first checkpoint cannot be told apart, and is what the restart record names besides.
 */
function neverStored(chain: string, head: ChainHead, heads: readonly FoundHead[]): HeadDecision | null {
  if (head.seq === 0) return null // nothing numbered: going on from the start leaves no gap
  const readers = heads.filter((h) => h.readsBack)
  if (readers.length === 0 || readers.some((h) => h.head !== null) || heads.some((h) => h.spilled || h.unavailable)) return null
  const numbered = head.seq === 1 ? '1' : `1–${head.seq}`
  return {
    kind: 'restart', previous: chain,
    reason: `the records it numbered (${numbered}) are in no sink and no checkpoint signed one: the audit worker that numbered them stopped before a sink stored them (lost records; under durability: sync their requests were not served), or the log was emptied before the chain's first checkpoint`,
  }
}

/**
 * A checkpoint signs records every sink had taken (or durably spilled), and the state file is
 * written before the sinks take them: a chain that goes on from a head before the checkpoint's
 * count lacks records it once had — its newest were deleted, or the log and its state file were
 * replaced by an older copy. Continuing there numbered new records over the missing ones, and the
 * first checkpoint signed past the old count left `audit verify` nothing to hold the loss against
 * (a probe): the chain restarts instead, and the old one stays short of its checkpoint.
 */
function heldToCheckpoint(head: ChainHead, chain: string, signed: SignedHead): HeadDecision | null {
  const vouches = `the checkpoint signed at ${signed.time} vouches for ${signed.count}`
  if (head.seq < signed.count) {
    return { kind: 'restart', previous: chain, reason: `chain ${chain} ends at record ${head.seq} in its state file and sinks, but ${vouches}: its newest records were deleted or lost, or the log was replaced by an older copy` }
  }
  if (head.seq === signed.count && head.hash !== signed.hash) {
    return { kind: 'restart', previous: chain, reason: `record ${head.seq} of chain ${chain} is not the one ${vouches} (hash ${head.hash} instead of ${signed.hash}): the log was rewritten` }
  }
  return null
}

function continuation(read: StateRead, statePath: string, heads: readonly FoundHead[]): HeadDecision {
  if (read.kind === 'none') return { kind: 'new' }
  if (read.kind === 'unreadable') return { kind: 'restart', previous: null, reason: `the chain state ${statePath} cannot be read (${read.reason})` }
  const { state } = read
  const head: ChainHead = { seq: state.seq, hash: state.hash, id: state.id }
  for (const { sink, head: found } of heads) {
    if (!found || found.seq < state.seq) continue
    const where = `record ${found.seq} of chain ${state.chain} in ${sink}`
    const restart = (why: string): HeadDecision => ({ kind: 'restart', previous: state.chain, reason: `${where} ${why}` })
    if (found.problem) return restart(found.problem)
    if (found.seq === head.seq && found.hash !== head.hash) return restart(`is not the record the chain state names (hash ${found.hash} instead of ${head.hash})`)
    // The state is written before any sink takes a record: one past it was numbered by no worker of
    // this gateway. Gone on from, it was linked to and signed by the next checkpoint: a record added
    // to a stopped gateway's log, its hash computed, passed verify and became the chain's (a probe).
    // The state is not fsynced, so a power failure can also lose its last write while a sink kept
    // the records: the reason names both, and a restart loses nothing (the old chain stays).
    if (found.seq > head.seq) return restart(`is past record ${state.seq}, where the chain state ${statePath} ends: records no worker of this gateway numbered as far as its state file says (added to the log while it was stopped, or the state file's last write lost to a power failure?)`)
  }
  // The state is written when records are chained, before the sinks take them: a process killed
  // in between (SIGKILL, out of memory) leaves a state that names records no sink holds and no
  // spill file keeps. Under `durability: sync` none of them was answered. Continuing from the
  // state would link the next record to records that do not exist (a hole `audit verify` calls
  // deleted); the chain continues from the newest record a sink does hold instead.
  const readable = heads.filter((h) => h.head !== null)
  if (
    readable.length > 0 && heads.every((h) => !h.spilled && !h.unavailable) &&
    readable.every((h) => (h.head as SinkHead).seq < state.seq)
  ) {
    const best = readable.map((h) => ({ sink: h.sink, head: h.head as SinkHead })).reduce((a, b) => (b.head.seq > a.head.seq ? b : a))
    if (best.head.problem) return { kind: 'restart', previous: state.chain, reason: `record ${best.head.seq} of chain ${state.chain} in ${best.sink} ${best.head.problem}` }
    return { kind: 'continue', head: { seq: best.head.seq, hash: best.head.hash, id: best.head.id }, unstored: { from: best.head.seq + 1, to: state.seq } }
  }
  return { kind: 'continue', head }
}

/** The code of the record that says how many records were lost to a full spill (records_lost). */
export const RECORDS_LOST = 'records_lost'

/** A record the audit worker writes about its chain, not a request's: `method` and `path` `-`, `status` 0, `decision` error. */
function chainRecord(code: string, detail: string, instance: string, prevHash: string, now: Date): AuditRecord {
  return chain({
    id: randomUUID(), time: now.toISOString(), request_id: '-', method: '-', path: '-', status: 0, decision: 'error', code,
    detail, roles: [], source_ip: '-', duration_ms: 0, bytes_in: 0, bytes_out: 0, instance,
  }, prevHash)
}

/**
 * What the chain says where records were lost before they were numbered (every sink away and the
 * spill files full): an ordinary record, so the chain has no gap that verify would fail for good,
 * and the loss is in the log itself, not only in a metric.
 */
export function lostRecordsRecord(lost: number, since: string, instance: string, prevHash: string, now = new Date(), why = 'the spill files held audit.spill_max_bytes'): AuditRecord {
  const detail = `${lost} audit ${lost === 1 ? 'record was' : 'records were'} lost from ${since}: every sink was away and ${why} (counted in bouncer_audit_dropped_total).`
  return chainRecord(RECORDS_LOST, detail, instance, prevHash, now)
}

/** The first record of a chain that replaces one that could not be continued. */
export function restartRecord(previous: string | null, reason: string, instance: string, now = new Date()): AuditRecord {
  const detail = `${previous ? `Chain ${previous}` : 'The previous chain'} cannot be continued: ${reason}. Its records are kept as they are; this chain starts afresh.`
  return chainRecord(CHAIN_RESTARTED, detail, instance, GENESIS_HASH, now)
}
