// The audit log as the request thread sees it: turn a finished request into a line, queue it, and
// every `flush_interval` (or `max_batch` lines) hand the batch to the audit worker in one message.
// `durability: sync` waits for the batch holding a record to be committed (group commit: whatever
// is queued goes with it). Nothing here blocks on a sink.
import { hostname } from 'node:os'
import { resolve } from 'node:path'
import { Worker } from 'node:worker_threads'
import { spillHeadroom, type AuditConfig } from '../config/index.ts'
import { GatewayError } from '../errors/index.ts'
import type { RequestFacts } from '../request/index.ts'
import type { BackgroundTasks, Logger } from '../telemetry/index.ts'
import type { AuditHead } from './chain-shapes.ts'
import { checkpointSigningKey, type KeyStore } from './checkpoint-key.ts'
import { checkpointPathOf } from './checkpoint.ts'
import { LineBuffer } from './line-buffer.ts'
import { recordLine, rejectedLine, type RejectedRequest } from './record.ts'
import { sinkName } from './sinks/sink.ts'
import { spillBytes } from './spill.ts'
import { unconfirmedBatches, type InFlightBatch, type Waiter } from './unconfirmed.ts'
import type { FromWorker, ToWorker, WorkerConfig, WorkerCounters, WorkerSinkConfig, WorkerStats } from './worker.ts'

export interface AuditStats extends WorkerStats {
  /** Lines queued on the request thread plus records not yet handled by every sink. */
  queueDepth: number
  /** The sinks that have taken records at least once since the gateway started (readiness). */
  answered: readonly string[]
}

export type { AuditHead } from './chain-shapes.ts'

export interface AuditLog {
  readonly enabled: boolean
  readonly durability: 'batched' | 'sync'
  /** The spill files are full and audit.on_spill_full is refuse: requests get 503 audit_unavailable. */
  readonly refusing: boolean
  /** Queues a finished request's record (it is written within flush_interval). */
  record(ctx: RequestFacts): void
  /**
   * Queues the record and resolves once it is committed (durability: sync); rejects with 503
   * audit_unavailable when it cannot be (recordLost): the answer must not complete unrecorded.
   */
  commit(ctx: RequestFacts): Promise<void>
  /** A request Node's parser refused before the pipeline saw it. */
  recordRejected(info: RejectedRequest): void
  /** The same, resolving once it is committed (durability: sync: its raw answer waits for it). */
  commitRejected(info: RejectedRequest): Promise<void>
  stats(): AuditStats
  /** Null when the audit log is off, or before the worker has started. */
  head(): AuditHead | null
  /** Writes everything queued and stops the worker (SIGTERM). */
  close(): Promise<void>
}

/**
 * Which gateway wrote a record (its `instance`): `audit.instance_id`, else $BOUNCER_INSTANCE, else
 * host name and process id — unique among running gateways, and what an operator finds in `ps`.
 */
export function instanceIdOf(configured: string | undefined, env: NodeJS.ProcessEnv = process.env): string {
  return configured ?? (env.BOUNCER_INSTANCE || `${hostname()}:${process.pid}`)
}

const WORKER_URL = new URL(import.meta.url.endsWith('.ts') ? './worker.ts' : './worker.js', import.meta.url)
/** A worker that could not start is started again after 100 ms, 200 ms, 400 ms… up to 30 s. */
const RESTART_DELAY_MS = 100
const MAX_RESTART_DELAY_MS = 30_000
/**
 * How long the batches a crashed worker numbered but did not confirm wait for its replacement to
 * say what the sinks hold (unconfirmed.ts): past its start and its sinks' open and head deadlines
 * (3 s each, worker.ts), so a slow sink does not turn a stored record into a 503. It costs no
 * latency: a lost record's 503 is recorded too, by that same replacement, and waits for it anyway.
 */
const SETTLE_TIMEOUT_MS = 10_000

/**
 * `secrets`: the store that keeps the checkpoint signing key, when there is one (checkpoint-key.ts).
 * `outstanding`: a cell shared with server.workers' primary, holding how many records this log has
 * taken and no sink has yet (queued, or with the audit worker): what is lost if the thread ends
 * without draining (its heap limit), which the primary counts as dropped (a probe found them lost
 * and counted nowhere).
 */
export function createAuditLog(config: AuditConfig, logger: Logger, background: BackgroundTasks, secrets: KeyStore | null = null, outstanding: Int32Array<ArrayBufferLike> = new Int32Array(1)): AuditLog {
  if (config.sinks.length === 0) return disabledAuditLog
  const checkpointFile = resolve(checkpointPathOf(config))
  const key = checkpointSigningKey(secrets, `${checkpointFile}.key`, logger)
  const instance = instanceIdOf(config.instance_id)
  const workerConfig: WorkerConfig = {
    sinks: config.sinks.map((sink): WorkerSinkConfig => (sink.type === 'sqlite' ? { type: 'sqlite', path: resolve(sink.path) } : sink)),
    durable: config.durability === 'sync',
    retentionMs: config.retention,
    spillDir: resolve(config.spill_dir),
    spillMaxBytes: config.spill_max_bytes,
    onSpillFull: config.on_spill_full,
    spillHeadroomBytes: spillHeadroom(config),
    capacity: config.queue_capacity,
    checkpoint: { path: checkpointFile, intervalMs: config.checkpoint_interval, key: { kid: key.kid, jwk: key.jwk } },
    instance,
    posted: new BigInt64Array(new SharedArrayBuffer(8)),
  }
  let head: AuditHead | null = null

  const pending = new LineBuffer()
  let waiters: Waiter[] = []
  let timer: NodeJS.Timeout | undefined
  let nextId = 1
  const inFlight = new Map<number, InFlightBatch>()
  let inFlightRecords = 0
  const answered = new Set<string>()
  // Until the worker's first stats, the spill as it lies: a gateway started on a spill an earlier run
  // filled served every request while its worker started (a probe: 30 answered 200 under refuse,
  // with the sink away, whose records only the headroom took). A replaced crashed worker too.
  const spillAtStart = spillBytesIn(workerConfig.spillDir, workerConfig.sinks)
  let workerStats: WorkerStats = { backlog: 0, written: 0, spilled: 0, replayed: 0, dropped: 0, quarantined: 0, sinks: {}, chain: '', seq: 0, spillBytes: spillAtStart, spillFull: spillAtStart >= config.spill_max_bytes }
  const refuseWhenFull = config.on_spill_full === 'refuse'
  let lost = 0
  const unconfirmed = unconfirmedBatches(SETTLE_TIMEOUT_MS, ({ stored, lost: gone, by }) => {
    lost += gone
    outstanding[0] = pending.count + inFlightRecords
    const why = by === 'replacement' ? 'as its replacement found the sinks' : by === 'timeout' ? `its replacement did not say within ${SETTLE_TIMEOUT_MS} ms` : 'its replacement stopped before it started'
    logger[gone > 0 ? 'error' : 'info']({ stored, lost: gone }, `the records the stopped audit worker had not confirmed are settled (${why}): stored ones are answered, lost ones counted as dropped`)
  })
  // What workers that have stopped had counted: a new worker counts from 0, and the counters of
  // /metrics must never go back or stand still while it catches up (Prometheus counters).
  let carried: WorkerCounters = { written: 0, spilled: 0, replayed: 0, dropped: 0, quarantined: 0 }
  let closing = false
  let drained: (() => void) | undefined
  // Starts in a row that ended before the worker was ready (its sink or spill directory cannot be
  // opened): the next waits RESTART_DELAY_MS × 2^n, at most MAX_RESTART_DELAY_MS, instead of
  // spawning threads in a loop; while it waits (`down`) records have no worker and are counted as
  // dropped. A worker that crashed after starting is replaced at once.
  let failedStarts = 0
  let restartTimer: NodeJS.Timeout | undefined
  let down = false
  let worker = start()

  function start(): Worker {
    // The worker's young generation stays small: its batches are short-lived strings, and a
    // default-sized one (up to 64 MB, like the request thread's) costs resident memory for nothing.
    const w = new Worker(WORKER_URL, { workerData: workerConfig, resourceLimits: { maxYoungGenerationSizeMb: 8 } })
    let ready = false
    w.on('message', (message: FromWorker) => {
      if (w !== worker) return // a late message of a worker already replaced
      switch (message.type) {
        case 'committed': {
          workerStats = { ...workerStats, ...message.counters }
          if (head) head.head = { count: message.head.seq, id: message.head.id, hash: message.head.hash }
          if (message.id === null) break
          const batch = inFlight.get(message.id)
          inFlight.delete(message.id)
          if (batch) {
            inFlightRecords -= batch.count
            outstanding[0] = pending.count + inFlightRecords + unconfirmed.records
            for (const wake of batch.waiters) wake(!message.lost)
          }
          break
        }
        case 'numbered': {
          pending.recycle(message.buffer)
          const batch = inFlight.get(message.id)
          if (batch) batch.last = message.last
          break
        }
        case 'stats':
          workerStats = message.stats
          for (const sink in message.stats.sinks) if (message.stats.sinks[sink]) answered.add(sink)
          break
        case 'log':
          logger[message.level](message.fields, message.msg)
          break
        case 'drained':
          drained?.()
          drained = undefined
          break
        case 'checkpoint':
          if (head) head.checkpoint = message.checkpoint
          break
        case 'ready':
          ready = true
          failedStarts = 0
          head = {
            chain: message.chain, head: { count: message.head.seq, id: message.head.id, hash: message.head.hash },
            checkpoint: message.checkpoint, checkpoint_file: checkpointFile, key: key.publicKey,
          }
          logger.debug({ chain: message.chain, checkpoint_key: key.keptIn }, 'audit worker ready')
          unconfirmed.settle(message.stored, 'replacement')
          break
      }
    })
    w.on('error', (err) => logger.error({ err }, 'the audit worker failed'))
    w.on('exit', (code) => {
      if (closing) {
        if (w === worker && drained) stoppedDuringDrain(code)
        return
      }
      // What an earlier worker left unconfirmed waited for this one to start, which it did not (once
      // ready, it settled them).
      unconfirmed.settle(null, 'no replacement')
      // Records handed to the dead worker that it never numbered are lost: counted, their waiting
      // responses released. Those it numbered may be stored: they wait for the replacement (it
      // continues the chain from its state and says what every sink holds).
      const gone = unconfirmed.hold(inFlight.values())
      lost += gone
      carried = addCounters(carried, workerStats)
      workerStats = { ...workerStats, written: 0, spilled: 0, replayed: 0, dropped: 0, quarantined: 0 }
      background.failed('audit_worker', new Error(`the audit worker exited with code ${code}`), { message: 'the audit worker stopped: restarting it', fields: { lost: gone, unconfirmed: unconfirmed.records } })
      inFlight.clear()
      inFlightRecords = 0
      outstanding[0] = pending.count + unconfirmed.records
      // A crash: a new worker at once, and the queue goes to it (it buffers messages until it runs).
      if (ready) return restart()
      down = true
      restartTimer = setTimeout(restart, Math.min(MAX_RESTART_DELAY_MS, RESTART_DELAY_MS * 2 ** failedStarts++))
    })
    return w
  }

  /**
   * The worker ended before it answered the final drain (a crash, its heap limit): what it held is
   * lost, counted as dropped, and close() returns instead of waiting for an answer that cannot come.
   */
  function stoppedDuringDrain(code: number): void {
    // An earlier worker's unconfirmed batches waited for this one, which never started: lost too.
    const held = unconfirmed.records
    unconfirmed.settle(null, 'no replacement')
    lost += inFlightRecords
    logger.error({ code, lost: inFlightRecords + held }, 'the audit worker stopped during the final drain: its uncommitted records are lost')
    for (const batch of inFlight.values()) for (const wake of batch.waiters) wake(false)
    inFlight.clear()
    // Left in the cell: this thread ends next, before any scrape reports `lost`, and with
    // server.workers its primary counts the cell as dropped (a review).
    outstanding[0] = pending.count + inFlightRecords + held
    inFlightRecords = 0
    drained?.()
    drained = undefined
  }

  function restart(): void {
    restartTimer = undefined
    void background.run('audit_worker', () => {
      worker = start()
      down = false
    })
  }

  function flush(): void {
    clearTimeout(timer)
    timer = undefined
    if (pending.count === 0) return
    if (down) {
      // No worker until the next start: these records cannot be written (counted as dropped).
      lost += pending.count
      pending.take()
      outstanding[0] = inFlightRecords + unconfirmed.records
      for (const wake of waiters) wake(false)
      waiters = []
      return
    }
    const id = nextId++
    const count = pending.count
    inFlight.set(id, { count, waiters })
    inFlightRecords += count
    const bytes = pending.take()
    const postedEnd = Number(Atomics.add(workerConfig.posted, 0, BigInt(count))) + count
    worker.postMessage({ type: 'batch', id, bytes, postedAt: Date.now(), postedEnd } satisfies ToWorker, [bytes.buffer])
    waiters = []
  }

  function push(line: string): void {
    if (!pending.fits(line)) flush()
    pending.append(line)
    outstanding[0] = pending.count + inFlightRecords + unconfirmed.records
  }

  function enqueue(line: string): void {
    push(line)
    if (pending.count >= config.max_batch) flush()
    else timer ??= setTimeout(flush, config.flush_interval)
  }

  function committed(line: string): Promise<void> {
    return new Promise<void>((done, failed) => {
      push(line)
      waiters.push((stored) => (stored ? done() : failed(recordLost())))
      flush() // group commit: a waiting response does not sit out the flush interval
    })
  }

  return {
    enabled: true,
    durability: config.durability,
    get refusing() {
      return refuseWhenFull && workerStats.spillFull
    },
    record(ctx) {
      enqueue(recordLine(ctx, instance))
    },
    commit(ctx) {
      return committed(recordLine(ctx, instance))
    },
    recordRejected(info) {
      enqueue(rejectedLine(info, instance))
    },
    commitRejected(info) {
      return committed(rejectedLine(info, instance))
    },
    stats() {
      const counted = addCounters(carried, workerStats)
      return { ...workerStats, ...counted, dropped: counted.dropped + lost, queueDepth: pending.count + inFlightRecords + unconfirmed.records + workerStats.backlog, answered: [...answered] }
    },
    head: () => head,
    async close() {
      flush()
      closing = true
      if (down) {
        clearTimeout(restartTimer)
        unconfirmed.settle(null, 'no replacement')
        return // nothing to drain: the last worker has exited
      }
      await new Promise<void>((done) => {
        drained = done
        worker.postMessage({ type: 'drain', id: nextId++ } satisfies ToWorker)
      })
      await worker.terminate()
    },
  }
}

/**
 * durability: sync promises no answer completes before its record is stored. A record the audit
 * worker took with it when it ended, or that had no worker or no room anywhere, is not confirmed:
 * the answer becomes this refusal (or, its status already sent, is cut short), and the refusal is
 * recorded. A worker that stored the batch and ended before saying so is found out by its
 * replacement (unconfirmed.ts), except where a sink cannot be read back or has the batch only in its
 * spill: that leaves two records for the request (at least once, never none).
 */
function recordLost(): GatewayError {
  return new GatewayError('audit_unavailable', {
    detail: 'The audit log could not confirm that this request\'s record was stored (its worker ended, or had no room), and audit.durability: sync completes only recorded answers: the answer was withheld. The request may have reached its backend.',
    headers: { 'retry-after': '1' },
  })
}

/** Bytes in the spill files the audit worker will count (its sinks' own, not adopted ones): one stat each, at start. */
function spillBytesIn(dir: string, sinks: readonly WorkerSinkConfig[]): number {
  let sum = 0
  for (const sink of sinks) sum += spillBytes(dir, sinkName(sink))
  return sum
}

function addCounters(a: WorkerCounters, b: WorkerCounters): WorkerCounters {
  return {
    written: a.written + b.written, spilled: a.spilled + b.spilled, replayed: a.replayed + b.replayed,
    dropped: a.dropped + b.dropped, quarantined: a.quarantined + b.quarantined,
  }
}

const disabledAuditLog: AuditLog = {
  enabled: false,
  durability: 'batched',
  record() {},
  commit: async () => {},
  recordRejected() {},
  commitRejected: async () => {},
  refusing: false,
  stats: () => ({ queueDepth: 0, backlog: 0, written: 0, spilled: 0, replayed: 0, dropped: 0, quarantined: 0, sinks: {}, chain: '', seq: 0, spillBytes: 0, spillFull: false, answered: [] }),
  head: () => null,
  close: async () => {},
}
