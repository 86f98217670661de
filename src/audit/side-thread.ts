// The audit side threads: the admin API's jobs on an SQLite audit log run on worker threads of
// their own (side-worker.ts), beside the gateway's, because node:sqlite is synchronous and the
// gateway's event loop is the one its requests run on. PostgreSQL is asynchronous already: its
// jobs stay here, but for verification, which hashes every record whichever the sink. Each worker
// starts on first use and does not keep the process alive. Two jobs, a thread each (Lane):
//
// - the console's reads (searches, aggregates, verification), so a long aggregate never
//   holds up the requests the gateway is serving;
// - the admin API's change records, whose append takes the file's write lock, which the audit
//   worker (worker.ts) holds while it commits a batch: SQLite's busy wait (up to 5 s) would stop
//   every request on this thread for as long.
import { Worker } from 'node:worker_threads'
import type { AuditConfig } from '../config/index.ts'
import { GatewayError } from '../errors/index.ts'
import { appendChange, type ChangeSigner } from './change-log.ts'
import { auditCounts, auditDenials, auditOverview, type AggregateQuery, type AuditCounts, type DenialGroup, type Overview } from './aggregate.ts'
import type { AuditRecord, RecordInput } from './record.ts'
import { searchAudit, type AuditQuery, type AuditSource } from './search.ts'
import { NoAuditLog } from './sinks/sqlite.ts'
import { unreadableLog } from './unreadable.ts'
import type { Anchors, VerifyResult } from './verify.ts'

export type SideJob =
  | { kind: 'overview'; source: AuditSource; query: AggregateQuery }
  | { kind: 'denials'; source: AuditSource; query: Omit<AggregateQuery, 'bucketMs'>; limit?: number }
  | { kind: 'counts'; source: AuditSource; sinceMs: number }
  | { kind: 'search'; source: AuditSource; query: AuditQuery }
  | { kind: 'verify'; source: AuditSource; anchors: Anchors }
  | { kind: 'change'; config: AuditConfig; chainId: string; input: RecordInput; signer: ChangeSigner | null }

/** A failed job says its error's message, and the codes that tell what failed (unreadable.ts reads them). */
export type SideReply = { id: number; ok: true; result: unknown } | { id: number; ok: false; noLog: boolean; message: string; code?: string; errcode?: number }

const WORKER_URL = new URL(import.meta.url.endsWith('.ts') ? './side-worker.ts' : './side-worker.js', import.meta.url)

type Waiting = Map<number, { resolve: (value: unknown) => void; reject: (err: Error) => void }>

/**
 * The console's reads and the admin API's change records each have a thread: on one, a revocation's
 * answer and audit record waited behind every read queued before it, and a read-only caller's
 * searches that select few records (each reads the log's whole time index) could be queued without
 * end (a probe: seconds each on a few million records).
 */
type Lane = 'reads' | 'changes'

/** The side threads' name, their lane's after it: `bouncer audit side thread (reads)`. */
export const SIDE_THREAD_NAME = 'bouncer audit side thread'

/** The thread each lane's jobs go to now, and the jobs it owes an answer. */
const current = new Map<Lane, { worker: Worker; waiting: Waiting }>()
let nextId = 1

function thread(lane: Lane): { worker: Worker; waiting: Waiting } {
  const running = current.get(lane)
  if (running) return running
  // Its own small young generation: a query's rows are short-lived (bin/bouncer.js lets workers size theirs).
  // Named by its lane: both run one script, and a heap snapshot or the inspector tells them apart by name.
  const w = new Worker(WORKER_URL, { name: `${SIDE_THREAD_NAME} (${lane})`, resourceLimits: { maxYoungGenerationSizeMb: 8 } })
  const waiting: Waiting = new Map()
  w.unref()
  w.on('message', (reply: SideReply) => {
    const job = waiting.get(reply.id)
    if (!job) return
    waiting.delete(reply.id)
    if (waiting.size === 0) w.unref()
    if (reply.ok) job.resolve(reply.result)
    else job.reject(reply.noLog ? new NoAuditLog(reply.message) : Object.assign(new Error(reply.message), { code: reply.code, errcode: reply.errcode }))
  })
  // A thread that failed answers none of its jobs; the next job starts a new one. Its 'exit' can
  // come turns after its 'error': by then a job may have gone to the new thread, which this
  // thread's end must not fail (each thread rejects only what it owes).
  const failOwn = (err: Error) => {
    for (const { reject } of waiting.values()) reject(err)
    waiting.clear()
    if (current.get(lane)?.worker === w) current.delete(lane)
  }
  w.on('error', failOwn)
  w.on('exit', () => failOwn(new Error('the audit side thread stopped')))
  const started = { worker: w, waiting }
  current.set(lane, started)
  return started
}

/** Starts the thread ahead of its first job (the console's page is loading: its questions follow). */
export function warmAuditReads(): void {
  thread('reads')
}

function offThread<T>(job: SideJob): Promise<T> {
  const { worker, waiting } = thread(job.kind === 'change' ? 'changes' : 'reads')
  const id = nextId++
  worker.ref() // while a page waits for an answer
  return new Promise<T>((resolve, reject) => {
    waiting.set(id, { resolve: resolve as (value: unknown) => void, reject })
    worker.postMessage({ id, job })
  })
}

/**
 * A read whose log cannot be read for the log's or its server's reason (unreadable.ts) fails as 503
 * audit_unavailable, saying why: the console and GET /api/audit answered 500 "The gateway failed to
 * handle this request." to a PostgreSQL server that was down (a probe), and logged it as the gateway's error.
 */
async function readable<T>(source: AuditSource, read: Promise<T>): Promise<T> {
  try {
    return await read
  } catch (err) {
    const why = err instanceof NoAuditLog ? null : unreadableLog(source, err)
    if (why === null) throw err
    throw new GatewayError('audit_unavailable', { detail: `The audit log cannot be read: ${why}.`, cause: err })
  }
}

export function readOverview(source: AuditSource, query: AggregateQuery): Promise<Overview> {
  return readable(source, source.type === 'sqlite' ? offThread({ kind: 'overview', source, query }) : auditOverview(source, query))
}

export function readDenials(source: AuditSource, query: Omit<AggregateQuery, 'bucketMs'>, limit?: number): Promise<DenialGroup[]> {
  return readable(source, source.type === 'sqlite' ? offThread({ kind: 'denials', source, query, limit }) : auditDenials(source, query, limit))
}

export function readCounts(source: AuditSource, sinceMs: number): Promise<AuditCounts> {
  return readable(source, source.type === 'sqlite' ? offThread({ kind: 'counts', source, sinceMs }) : auditCounts(source, sinceMs))
}

export function readRecords(source: AuditSource, query: AuditQuery): Promise<AuditRecord[]> {
  return readable(source, source.type === 'sqlite' ? offThread({ kind: 'search', source, query }) : searchAudit(source, query))
}

/**
 * `bouncer audit verify` for the console: a million records hashed again, off the gateway's thread
 * (the keys are cloned across), whichever the sink. A PostgreSQL log's was verified here, its reads
 * asynchronous but each page of 5,000 records hashed at once: the gateway's requests waited up to
 * 128 ms at a time, for as long as the verify ran (3.3 s for 100,000 records: a probe).
 */
export function readVerification(source: AuditSource, anchors: Anchors): Promise<VerifyResult> {
  return readable(source, offThread({ kind: 'verify', source, anchors }))
}

/** Appends a change's record (change-log.ts's appendChange): on the thread when a sink is SQLite. */
export function appendChangeRecord(config: AuditConfig, chainId: string, input: RecordInput, signer: ChangeSigner | null): Promise<string | null> {
  // Signed, it also appends to the checkpoint file (fsync, and a wait while another thread compacts it): not on the gateway's thread either.
  return config.sinks.some((sink) => sink.type === 'sqlite') || signer !== null ? offThread({ kind: 'change', config, chainId, input, signer }) : appendChange(config, chainId, input, signer)
}
