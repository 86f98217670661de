// The audit worker thread: it owns the hash chain and the sinks. The request thread only turns a
// finished request into one JSON line (bench/audit.ts measures it); hashing, SQLite inserts,
// PostgreSQL round trips, spilling and replay all happen here, off the request path.
import { createPrivateKey, createPublicKey, randomUUID, type JsonWebKey } from 'node:crypto'
import { basename, join } from 'node:path'
import { parentPort, workerData } from 'node:worker_threads'
import { makeDirectories, quietSqliteWarning, withinDeadline } from '../collections/index.ts'
import { CHAIN_STATE_FILE, decideHead, lostRecordsRecord, readChainState, restartRecord, writeChainState, type FoundHead } from './chain-head.ts'
import { appendCheckpoint, checkpointProblem, latestByChain, readCheckpointFile, signCheckpoint, signCut, type Checkpoint } from './checkpoint.ts'
import { GENESIS_HASH, link, type AuditRecord } from './record.ts'
import { ownThreadNice, workerPriority } from './worker-priority.ts'
import { createSinkRunner, type RunnerEvents, type SinkRunner } from './sink-runner.ts'
import { createPostgresSink } from './sinks/postgres.ts'
import { LinkedRow, type AuditSink, type ChainHead, type SinkHead, type StoredRow } from './sinks/sink.ts'
import { createSqliteSink } from './sinks/sqlite.ts'
import { createStdoutSink } from './sinks/stdout.ts'
import { SEGMENT_BYTES, segmentOf, spillBytes, spillFor, type Spill } from './spill.ts'
import { spillBudget, type OnSpillFull } from './spill-budget.ts'
import { adoptedSpillDirs, waitingSpillFiles } from './spill-adopt.ts'

quietSqliteWarning() // first: Node 22's warning about node:sqlite, which these modules load

export type WorkerSinkConfig = { type: 'sqlite'; path: string } | { type: 'postgres'; url: string; schema: string; write_timeout: number } | { type: 'stdout' }

export interface WorkerConfig {
  sinks: WorkerSinkConfig[]
  durable: boolean
  retentionMs: number
  spillDir: string
  /** audit.spill_max_bytes for this worker's spill files (its share, with server.workers). */
  spillMaxBytes: number
  onSpillFull: OnSpillFull
  /** What the spill files may hold past spillMaxBytes: under refuse, the records on their way and the refusals. */
  spillHeadroomBytes: number
  capacity: number
  checkpoint: { path: string; intervalMs: number; key: { kid: string; jwk: JsonWebKey } }
  /** The `instance` of the records this worker writes itself. */
  instance: string
  /**
   * How many records the request thread has posted so far, shared: a batch's `postedEnd` against
   * it is how many wait behind it in this worker's queue, which count against `capacity` (a sink
   * whose synchronous writes hold the thread must not let them pile up in memory unbounded).
   */
  posted: BigInt64Array
}

/**
 * A batch is newline-separated UTF-8 lines, transferred (line-buffer.ts); `postedAt` is Date.now()
 * when the request thread posted it (how far behind the worker is: worker-priority.ts);
 * `postedEnd` the count of records posted up to and including it (WorkerConfig.posted).
 */
export type ToWorker = { type: 'batch'; id: number; bytes: Uint8Array<ArrayBuffer>; postedAt: number; postedEnd: number } | { type: 'drain'; id: number }

/** What the worker counts (the bouncer_audit_*_total counters). */
export type WorkerCounters = Pick<WorkerStats, 'written' | 'spilled' | 'replayed' | 'dropped' | 'quarantined'>

export interface WorkerStats {
  backlog: number
  written: number
  spilled: number
  replayed: number
  dropped: number
  /** Spill file lines that were not records, moved to quarantine. */
  quarantined: number
  sinks: Record<string, boolean>
  chain: string
  seq: number
  /** Bytes in this worker's spill files (adopted ones too), and whether its own hold spill_max_bytes. */
  spillBytes: number
  spillFull: boolean
}

export type FromWorker =
  /**
   * `stored`: the newest record of the chain it continues that every sink held when it started (null
   * when one cannot say: away, keeping nothing to read back like stdout, or the chain not continued).
   * The request thread settles with it the batches a worker that ended had numbered (log.ts).
   */
  | { type: 'ready'; chain: string; head: ChainHead; checkpoint: Checkpoint | null; stored: number | null }
  /**
   * A batch is read and numbered, before any sink has it: `last` is its last record's seq (null: it
   * was dropped before numbering). Its bytes go back: the request thread writes a later batch into them (line-buffer.ts).
   */
  | { type: 'numbered'; id: number; last: number | null; buffer: ArrayBuffer }
  /** A batch (id null: a record of the worker's own) is in every sink or its spill file. */
  /**
   * `lost`: the batch's records were dropped, not stored (a sync response waiting on them is refused).
   * `counters`: the worker's counts as of this commit, so /metrics counts a record once its answer
   * is complete (the stats come once a second: a scrape right after a sync answer read 0 written).
   */
  | { type: 'committed'; id: number | null; head: ChainHead; lost?: true; counters: WorkerCounters }
  | { type: 'checkpoint'; checkpoint: Checkpoint }
  | { type: 'drained'; id: number }
  | { type: 'stats'; stats: WorkerStats }
  | { type: 'log'; level: 'info' | 'warn' | 'error'; msg: string; fields: Record<string, unknown> }

const OPEN_TIMEOUT_MS = 3_000

const port = parentPort
if (!port) throw new Error('audit/worker.ts runs as a worker thread')
const config = workerData as WorkerConfig
const send = (message: FromWorker) => port.postMessage(message)

const counters: WorkerCounters = { written: 0, spilled: 0, replayed: 0, dropped: 0, quarantined: 0 }
/** The spill files held spill_max_bytes when last looked at (noteSpillFull). */
let spillFull = false
const events: RunnerEvents = {
  log: (level, msg, fields = {}) => send({ type: 'log', level, msg, fields: cloneable(fields) }),
  written: (_sink, rows) => (counters.written += rows),
  spilled: (_sink, rows) => {
    counters.spilled += rows
    noteSpillFull()
  },
  replayed: (_sink, rows) => (counters.replayed += rows),
  // Heard at once, not at the next second's stats: a /readyz right after a replay said not ready.
  freed: () => noteSpillFull(),
  dropped: (_sink, rows) => {
    counters.dropped += rows
    noteSpillFull()
  },
  quarantined: (_sink, lines) => (counters.quarantined += lines),
}

/** Errors lose their class across postMessage: keep what a log line needs (the logger reads this shape as an error: telemetry/logger.ts). */
function cloneable(fields: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = {}
  for (const [key, value] of Object.entries(fields)) {
    out[key] = value instanceof Error ? { type: value.name, message: value.message, code: (value as { code?: unknown }).code, stack: value.stack } : value
  }
  return out
}

function createSink(sink: WorkerSinkConfig): AuditSink {
  switch (sink.type) {
    case 'sqlite':
      return createSqliteSink(sink.path, { durable: config.durable })
    case 'postgres':
      return createPostgresSink({ url: sink.url, schema: sink.schema, writeTimeoutMs: sink.write_timeout })
    case 'stdout':
      return createStdoutSink()
  }
}

/** The chain's state survives restarts here, so records continue the same chain. */
const statePath = join(config.spillDir, CHAIN_STATE_FILE)
makeDirectories(config.spillDir)
const stateRead = readChainState(statePath)

const sinks = config.sinks.map(createSink)
const unavailable = (sink: AuditSink) => (err: unknown) => {
  events.log('warn', 'audit sink unavailable at start: spilling records to disk until it is back', { sink: sink.name, err })
  return false
}
const opened = await Promise.all(sinks.map((sink) => withinDeadline(sink.open(), OPEN_TIMEOUT_MS, `audit sink ${sink.name}`, () => {}).then(() => true, unavailable(sink))))
const known = stateRead.kind === 'read' ? stateRead.state.chain : null
async function headIn(sink: AuditSink, i: number): Promise<FoundHead> {
  const spilled = spillBytes(config.spillDir, sink.name) > 0
  // stdout keeps nothing to read back: its null head says nothing of what it was given.
  const readsBack = config.sinks[i]?.type !== 'stdout'
  if (known === null || !opened[i]) return { sink: sink.name, head: null, spilled, unavailable: true, readsBack }
  try {
    return { sink: sink.name, head: await withinDeadline(sink.head(known), OPEN_TIMEOUT_MS, `audit sink ${sink.name}`, () => {}), spilled, unavailable: false, readsBack }
  } catch (err) {
    opened[i] = unavailable(sink)(err)
    return { sink: sink.name, head: null, spilled, unavailable: true, readsBack }
  }
}
const heads = await Promise.all(sinks.map(headIn))

const signingKey = { kid: config.checkpoint.key.kid, privateKey: createPrivateKey({ key: config.checkpoint.key.jwk as never, format: 'jwk' }) }
const ownKeys = new Map([[signingKey.kid, createPublicKey(signingKey.privateKey)]])
/** The latest checkpoint this gateway signed of a chain, from the checkpoint file ('unreadable': whether there is one is not known). */
function latestSigned(chain: string | null): Checkpoint | null | 'unreadable' {
  if (chain === null) return null
  try {
    const own = readCheckpointFile(config.checkpoint.path).checkpoints.filter((c) => c.chain === chain && checkpointProblem(c, ownKeys) === null)
    return latestByChain(own).get(chain) ?? null
  } catch (err) {
    events.log('warn', 'the audit checkpoint file cannot be read', { path: config.checkpoint.path, err })
    return 'unreadable'
  }
}
const signedBefore = latestSigned(known)
const decision = decideHead(stateRead, statePath, heads, signedBefore)
const chainId = decision.kind === 'continue' ? (known as string) : randomUUID()
let head: ChainHead = decision.kind === 'continue' ? decision.head : { seq: 0, hash: GENESIS_HASH, id: null }

function saveState(): void {
  writeChainState(statePath, { chain: chainId, ...head })
}

// Segments of a sixteenth of the cap (64 KiB to 16 MiB): a replay frees the cap's room a sixteenth at a time.
const segmentBytes = Math.max(65_536, Math.min(SEGMENT_BYTES, Math.floor(config.spillMaxBytes / 16)))
const spills = sinks.map((sink) => spillFor(config.spillDir, sink.name, decision.kind === 'continue' ? known : null, segmentBytes))
const budget = spillBudget(config.spillMaxBytes, config.spillHeadroomBytes, () => spills)
const runners: SinkRunner[] = sinks.map((sink, i) =>
  createSinkRunner(sink, spills[i] as Spill, { capacity: config.capacity, durable: config.durable, events, opened: opened[i] === true, budget }),
)
/**
 * Spill files a gateway of another shape left (spill-adopt.ts), each replayed into its sink by a
 * runner of its own that takes no new records: it pings the sink every second and replays the file
 * once the sink answers. A file of a sink no longer configured stays, and is logged.
 */
const adopted: SinkRunner[] = []
/** Their files: not held against spill_max_bytes (they only shrink), but in bouncer_audit_spill_bytes, waiting as they are. */
const adoptedSpills: Spill[] = []
for (const dir of adoptedSpillDirs(config.spillDir)) {
  const waiting = new Set(waitingSpillFiles(dir))
  for (const sink of sinks) {
    const spill = spillFor(dir, sink.name)
    // Its segments waiting (the first may be gone, released by an earlier replay).
    const own = [...waiting].filter((file) => segmentOf(basename(spill.path), file) !== null)
    if (own.length === 0) continue
    for (const file of own) waiting.delete(file)
    adoptedSpills.push(spill)
    adopted.push(createSinkRunner(sink, spill, { capacity: config.capacity, durable: config.durable, events, opened: true }))
  }
  if (waiting.size > 0) events.log('warn', 'spilled audit records of a sink no longer configured: kept, not replayed', { dir, files: [...waiting] })
}

/** The newest record every sink has, or has durably spilled: what a checkpoint may vouch for. */
let committed: ChainHead = head
let committing: Promise<unknown> = Promise.resolve()

/**
 * Hands chained rows to every sink; `committed` follows in order, once each has them or has
 * spilled them. `queued`: records still in this worker's queue behind them. `numbering`: where the
 * chain stood before these rows, and the lost requests a records_lost record among them said: for
 * taking them back when no sink could keep them (lostAfterNumbering).
 */
function handOver(rows: StoredRow[], batch: number | null, queued = 0, numbering?: Numbering): Promise<unknown> {
  saveState()
  const last = head
  const handled = Promise.all(runners.map((runner) => runner.handle(rows, queued)))
  committing = committing.then(() => handled).then((kept) => {
    if (numbering && !kept.some(Boolean)) return lostAfterNumbering(numbering, last, batch)
    lostRun = null
    if (unwritable !== null) {
      unwritable = null
      noteSpillFull()
    }
    committed = last
    send({ type: 'committed', id: batch, head: last, counters })
  })
  return handled
}

/** Where the chain stood before a batch was numbered; `requests`: the lost requests it stands for (its own, and those its records_lost record said). */
interface Numbering {
  from: ChainHead
  requests: number
}

/**
 * The spill files could not be written (a full disk) while every sink was away, since this time:
 * batches are dropped before they are numbered until a retry (UNWRITABLE_RETRY_MS on) keeps one,
 * and under on_spill_full: refuse the gateway refuses requests meanwhile, as at the cap.
 */
let unwritable: number | null = null
const UNWRITABLE_RETRY_MS = 1_000

/** Consecutive batches no sink kept: where the first began, and the requests they stood for. */
let lostRun: Numbering | null = null

/**
 * A batch no sink kept, nor its spill file (a full disk: it cannot be written): its records are
 * lost. Numbered, they left a gap that `verify` failed for good as records deleted, and a sync
 * response waiting on them was answered as if recorded. Its response is refused now, and once
 * nothing was numbered after it, the chain goes back to where the run of lost batches began:
 * their requests are said by the next records_lost record, as records lost before numbering are.
 */
function lostAfterNumbering(numbering: Numbering, last: ChainHead, batch: number | null): void {
  lostRun = lostRun ? { from: lostRun.from, requests: lostRun.requests + numbering.requests } : { ...numbering }
  const was = unwritable
  unwritable = Date.now()
  if (was === null) noteSpillFull()
  if (head.seq === last.seq) {
    if (lostUnnumbered === 0) lostSince = new Date().toISOString()
    lostUnnumbered += lostRun.requests
    lostWhy = UNWRITABLE
    head = lostRun.from
    saveState()
    lostRun = null
  }
  send({ type: 'committed', id: batch, head: committed, lost: true, counters })
}

function append(record: AuditRecord): StoredRow {
  head = { seq: head.seq + 1, hash: record.hash, id: record.id }
  return { chain: chainId, seq: head.seq, record }
}

if (decision.kind === 'continue' && decision.unstored) {
  events.log('warn', 'the audit chain continues from the last stored record: the previous process stopped after chaining records no sink took (none was answered under durability: sync)', {
    chain: chainId, unstored_from: decision.unstored.from, unstored_to: decision.unstored.to,
  })
}
if (decision.kind === 'restart') {
  events.log('error', 'the audit chain cannot be continued: a new chain starts, its first record says why (code chain_restarted)', {
    previous_chain: decision.previous, chain: chainId, reason: decision.reason,
  })
  handOver([append(restartRecord(decision.previous, decision.reason, config.instance))], null)
} else {
  saveState()
}

/** The id of a request's record, from its canonical text (`"id":"<uuid>"`, written by recordLine). */
const ID_FIELD = ',"id":"'

/**
 * A spill line is the record wrapped with its chain, seq and hash: at most this many bytes more than
 * the line the request thread posted (~180 measured; the margin keeps the guess above the truth).
 */
const SPILL_LINE_OVERHEAD = 512

/**
 * Spill bytes let through by lostBeforeNumbering and not yet appended: the appends are queued, and
 * batches checked against the files alone all saw the same room (a test saw 28 records numbered,
 * then dropped by the runner, past it).
 */
let spillOnItsWay = 0

/** A records_lost record's spill line, at most (~700 bytes measured: fixed fields, a short detail). */
const LOST_RECORD_BYTES = 2_048

/** Records lost before they were numbered (lostBeforeNumbering), and since when: said by a record once there is room. */
let lostUnnumbered = 0
let lostSince = ''
/** Why they were lost, for the records_lost record. */
const UNWRITABLE = 'the spill files could not be written (a full disk?)'
let lostWhy: string | undefined
/** The loss is logged once an outage: a smaller batch that fits between losses does not end it. */
let losingLogged = false

/**
 * Every sink away and their spill files without room for the whole batch: its records are lost.
 * Numbered, then dropped by the sinks' runners, they left a gap in the chain that `verify` failed for
 * good (a probe of the spill cap); dropped here, before they are numbered, the chain stays whole and
 * its next record says how many were lost (lostRecordsRecord).
 */
function lostBeforeNumbering(lines: string, count: number): number | null {
  if (runners.length === 0 || runners.some((runner) => runner.up)) return 0
  if (unwritable !== null && Date.now() - unwritable < UNWRITABLE_RETRY_MS) return null
  // The records_lost record that goes first, when there were losses, takes room too: left out, a
  // batch of one fitted by less than that record and was numbered, then dropped by the runner (a
  // gap; the spill cap's drop test saw counts one short, 1 run in 3 under load).
  const saying = lostUnnumbered > 0 ? LOST_RECORD_BYTES : 0
  const bytes = (Buffer.byteLength(lines) + count * (SPILL_LINE_OVERHEAD + 1) + saying) * runners.length
  // A claim that does not fit marks the spill full (readiness, the request thread) until it shrinks.
  return budget.claim([bytes], spillOnItsWay) === 0 ? null : bytes
}

/** `numbered` says where the batch's records went in the chain (or that they went nowhere), before the sinks take them. */
function onBatch(id: number, text: string, postedEnd: number, numbered: (last: number | null) => void): void {
  const lines = text.split('\n')
  const count = lines.length
  const spilling = lostBeforeNumbering(text, count)
  if (spilling === null) {
    numbered(null)
    if (lostUnnumbered === 0) lostSince = new Date().toISOString()
    lostWhy = unwritable === null ? undefined : UNWRITABLE
    lostUnnumbered += count
    events.dropped('(every sink)', count)
    if (!losingLogged) {
      losingLogged = true
      events.log('error', `audit records lost: every sink is away and ${lostWhy ?? 'the spill files are full (audit.spill_max_bytes)'}; counted in bouncer_audit_dropped_total, and the chain says how many once there is room`, { spill_max_bytes: budget.maxBytes })
    }
    // Released in order, after the batches before it: a sync response waiting on it is refused.
    committing = committing.then(() => send({ type: 'committed', id, head: committed, lost: true, counters }))
    return
  }
  if (lostUnnumbered > 0) {
    const from = head
    handOver([append(lostRecordsRecord(lostUnnumbered, lostSince, config.instance, head.hash, new Date(), lostWhy))], null, 0, { from, requests: lostUnnumbered })
    lostUnnumbered = 0
  }
  const from = head
  if (losingLogged && runners.some((runner) => runner.up)) losingLogged = false
  // Chained synchronously, in arrival order; the sinks then take the rows at their own pace.
  const rows: StoredRow[] = []
  for (const line of lines) {
    const linked = link(line, head.hash)
    const at = linked.canonical.indexOf(ID_FIELD) + ID_FIELD.length
    head = { seq: head.seq + 1, hash: linked.hash, id: linked.canonical.slice(at, linked.canonical.indexOf('"', at)) }
    rows.push(new LinkedRow(chainId, head.seq, linked))
  }
  numbered(head.seq)
  const handled = handOver(rows, id, Number(Atomics.load(config.posted, 0)) - postedEnd, { from, requests: count })
  if (spilling > 0) {
    spillOnItsWay += spilling
    void handled.then(() => (spillOnItsWay -= spilling))
  }
}

// A chain begun now has no checkpoint yet.
let latest: Checkpoint | null = decision.kind === 'continue' && signedBefore !== 'unreadable' ? signedBefore : null
let fileFailing = false

/** Signs the committed head when it moved since the last checkpoint, and keeps it apart from the records. */
function checkpoint(): Promise<unknown> {
  const at = committed
  if (at.id === null || at.seq <= (latest?.count ?? 0)) return Promise.resolve()
  const signed = signCheckpoint(chainId, { ...at, id: at.id }, signingKey)
  try {
    appendCheckpoint(config.checkpoint.path, signed, ownKeys)
    if (fileFailing) events.log('info', 'the audit checkpoint file is written again', { path: config.checkpoint.path })
    fileFailing = false
  } catch (err) {
    // Logged once per outage; the sinks and GET /api/audit/head still get the checkpoint.
    if (!fileFailing) events.log('error', 'the audit checkpoint file cannot be written', { path: config.checkpoint.path, err })
    fileFailing = true
  }
  latest = signed
  send({ type: 'checkpoint', checkpoint: signed })
  return Promise.all(runners.map((runner) => runner.checkpoint(signed)))
}
setInterval(checkpoint, config.checkpoint.intervalMs).unref()

// Yielding starts once the sinks are open and the chain's head is known: start-up runs at the
// request thread's priority, so a busy core does not hold back the gateway's first records. With
// sync durability a response waits for this worker's commit: it keeps that priority throughout.
const priority = workerPriority(config.durable ? null : ownThreadNice())

/** How long the final drain waits for a sink to close once its records are written or spilled. */
const SINK_CLOSE_MS = 1_000

port.on('message', (message: ToWorker) => {
  if (message.type === 'batch') {
    priority.observeLag(Date.now() - message.postedAt)
    const { id, bytes } = message
    const lines = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('utf8')
    onBatch(id, lines, message.postedEnd, (last) => port.postMessage({ type: 'numbered', id, last, buffer: bytes.buffer } satisfies FromWorker, [bytes.buffer]))
  } else if (message.type === 'drain') {
    priority.restore()
    void Promise.all([...runners, ...adopted].map((runner) => runner.drain()))
      .then(() => committing)
      .then(checkpoint) // the head at shutdown: the newest records are anchored too
      // Every record is written or spilled by now: a sink's close is not waited out past SINK_CLOSE_MS. A
      // PostgreSQL that stopped answering held it (its pool's end waits for the write given up on at
      // write_timeout) for the pool's 15 s query timeout past a SIGTERM's drain (an adversarial probe).
      .then(() => Promise.all(sinks.map((sink) => withinDeadline(sink.close(), SINK_CLOSE_MS, `audit sink ${sink.name}'s close`, () => {}).catch(() => {}))))
      .then(() => send({ type: 'drained', id: message.id }))
  }
})

/**
 * The log said the spill files were full, and they have not emptied since (nor has every sink come
 * back): said once per filling. Not again each time a replay's released segment takes the files
 * under the cap and the records still spilled behind it fill them again: one line per segment.
 */
let saidFull = false

function stats(): WorkerStats {
  const own = budget.used()
  spillFull = budget.full(own) || (unwritable !== null && !runners.some((runner) => runner.up))
  let spillBytes = own
  for (const spill of adoptedSpills) spillBytes += spill.size()
  // Said whichever look saw it first: the second's stats or an append's (noteSpillFull). Said by
  // noteSpillFull alone, a filling the stats saw first went unlogged (a test, on a loaded machine).
  if (spillFull && !saidFull) {
    saidFull = true
    sayFull(spillBytes)
  } else if (saidFull && !spillFull && (own === 0 || runners.every((runner) => runner.up))) {
    saidFull = false
  }
  return {
    backlog: runners.reduce((sum, r) => sum + r.backlog, 0),
    ...counters,
    sinks: Object.fromEntries(runners.map((r) => [r.name, r.up])),
    chain: chainId,
    seq: head.seq,
    spillBytes,
    spillFull,
  }
}
setInterval(() => send({ type: 'stats', stats: stats() }), 1_000).unref()

/**
 * The request thread refuses requests while the spill is full (on_spill_full: refuse): it hears at
 * once when an append fills it and when a replay frees room (the stats each second say it too).
 */
function noteSpillFull(): void {
  const was = spillFull
  const now = stats() // one stat of each spill file (it was three)
  if (now.spillFull !== was) send({ type: 'stats', stats: now })
}

function sayFull(spillBytes: number): void {
  const full = unwritable !== null ? `the audit spill files cannot be written (a full disk?) while every sink is away` : 'the audit spill files are full (audit.spill_max_bytes)'
  events.log('error', config.onSpillFull === 'refuse'
    ? `${full}: requests are refused with 503 audit_unavailable until the sink is back${unwritable !== null ? ' or the files can be written again' : ''}`
    : `${full}: further records are dropped until the sink is back`, { spill_bytes: spillBytes, spill_max_bytes: budget.maxBytes })
}

function retention(): void {
  const before = Date.now() - config.retentionMs
  // The cut is signed as the checkpoints are: a row written by hand shows in verify. With the
  // retention it was made under: verify holds the cut against that, not against a later config's.
  for (const runner of runners) void runner.retention(before, (cut) => signCut({ ...cut, retention: config.retentionMs }, signingKey))
}
// A tenth of the retention period, between 1 s and 1 h: old records go soon after they are due.
const retentionEvery = Math.min(3_600_000, Math.max(1_000, config.retentionMs / 10))
setInterval(retention, retentionEvery).unref()

/**
 * A batch the worker before this one numbered and ended without confirming is stored only if every
 * sink holds its records: the state file is written as records are numbered, so the chain's head
 * may name records no sink took (while one sink is away or spilling, decideHead keeps it). Records
 * durably spilled count as committed too, but finding them means reading the spill: such a batch
 * is reported lost (at least once, never none).
 */
const stored = decision.kind === 'continue' && heads.every((h) => h.head !== null && h.head.problem === null)
  ? Math.min(...heads.map((h) => (h.head as SinkHead).seq))
  : null

send({ type: 'stats', stats: stats() })
send({ type: 'ready', chain: chainId, head: committed, checkpoint: latest, stored })
