// Delivers the chain to one sink without losing or reordering a record, whatever the sink does.
//
// Mode `sink`: batches are written in order (one at a time). The first batch that fails — or a
// backlog beyond `capacity` rows (a slow sink; the records still in the worker's queue count, as a
// synchronous write that holds the thread keeps them there) — switches to mode `spill`: that batch and every later
// one are appended to the sink's spill file, in order. A recovery loop pings the sink every second;
// when it answers, the spill file is replayed from its start, in order, and the mode switches back
// to `sink` only once the file is drained and no append is in flight (the file is emptied in the
// same synchronous step). A sink therefore only ever receives a record after all earlier ones.
// Nothing is dropped unless the spill file itself cannot be written (a full disk), or the spill
// files hold what `budget` allows (audit.spill_max_bytes): that is counted, and logged once an
// outage. (With every sink away the worker drops such records before it numbers them, and says so in
// the chain: worker.ts lostBeforeNumbering. What reaches this is a sink away beside one that is up.)
// A write the sink leaves unanswered past its `writeTimeoutMs` (a server that stalls: with
// `durability: sync` the responses wait on it) counts as failed: its rows are spilled and the mode
// switches. The write itself runs on; the recovery waits for it to settle before replaying, so the
// order holds, and a row it did store is stored once (replays ignore a (chain, seq) already there).
// A spill line that is not a record is quarantined (spill.ts), logged with its place and counted,
// and the replay goes on.
import { DeadlineExceeded, withinDeadline } from '../collections/index.ts'
import type { Checkpoint } from './checkpoint.ts'
import type { AuditSink, CutSigner, StoredRow } from './sinks/sink.ts'
import { SPILL_START, type DamagedLine, type Spill } from './spill.ts'
import { SpillFull, type SpillBudget } from './spill-budget.ts'

export interface RunnerEvents {
  log(level: 'info' | 'warn' | 'error', msg: string, fields?: Record<string, unknown>): void
  written(sink: string, rows: number): void
  spilled(sink: string, rows: number): void
  replayed(sink: string, rows: number): void
  /** The spill's room grew (a replay released segments, or emptied it): under refuse, requests may be served again at once. */
  freed(sink: string): void
  dropped(sink: string, rows: number): void
  quarantined(sink: string, lines: number): void
}

export interface SinkRunner {
  readonly name: string
  readonly up: boolean
  /**
   * Resolves once the rows are in the sink or durably in its spill file (true), or false when the
   * spill file could not be written at all (a full disk: none of them was kept). A spill at its cap
   * resolves true: what it had room for is kept, the rest counted as dropped. `queued`: records still waiting in the worker's queue
   * behind them, counted against `capacity` with the backlog.
   */
  handle(rows: readonly StoredRow[], queued?: number): Promise<boolean>
  /** Rows accepted but not yet handled (for the queue-depth metric). */
  readonly backlog: number
  /** Waits until every accepted batch is handled (SIGTERM), then stops retrying. */
  drain(): Promise<void>
  /** Deletes what is older than `beforeMs`, each chain's cut signed by `sign`. */
  retention(beforeMs: number, sign: CutSigner): Promise<void>
  /** Stores a signed checkpoint after the writes before it (skipped while the sink is away). */
  checkpoint(checkpoint: Checkpoint): Promise<void>
}

const REPLAY_BATCH = 2_000
const RECOVERY_INTERVAL_MS = 1_000

export function createSinkRunner(sink: AuditSink, spill: Spill, options: { capacity: number; durable: boolean; events: RunnerEvents; opened: boolean; budget?: SpillBudget }): SinkRunner {
  const { events } = options
  let mode: 'sink' | 'spill' = options.opened && spill.size() === 0 ? 'sink' : 'spill'
  let writes: Promise<unknown> = Promise.resolve()
  let appends: Promise<unknown> = Promise.resolve()
  let appending = 0
  let backlog = 0
  let recovering = false
  let stopped = false
  let opened = options.opened
  /** A write given up on at its deadline that has not settled yet: replays wait for it. */
  let straggler: Promise<unknown> = Promise.resolve()
  /** Records were lost to a full spill during this outage: logged at the first, not at each. */
  let losing = false

  const timer = setInterval(() => void recover(), RECOVERY_INTERVAL_MS)
  timer.unref()

  function quarantined(damaged: DamagedLine | null): void {
    if (!damaged) return
    events.quarantined(sink.name, 1)
    events.log('error', 'a damaged line of an audit spill file was moved to quarantine: it is not replayed', {
      sink: sink.name, spill: damaged.file, line: damaged.line, offset: damaged.offset, reason: damaged.reason, quarantine: spill.quarantinePath,
    })
  }
  // Before the first append: a line cut short by a crash would swallow the next one.
  quarantined(spill.repairTail())

  function appendToSpill(rows: readonly StoredRow[]): Promise<boolean> {
    appending++
    const task = appends.then(async () => {
      try {
        await spill.append(rows, options.durable, options.budget)
        events.spilled(sink.name, rows.length)
        return true
      } catch (err) {
        const written = err instanceof SpillFull ? err.written : 0
        if (written > 0) events.spilled(sink.name, written)
        events.dropped(sink.name, rows.length - written)
        // A spill at its cap kept what it had room for (the worker drops whole batches ahead of it:
        // lostBeforeNumbering); one that cannot be written kept none of them.
        const kept = err instanceof SpillFull
        if (!(err instanceof SpillFull)) {
          events.log('error', 'audit records lost: the spill file cannot be written', { sink: sink.name, rows: rows.length, err })
        } else if (!losing) {
          losing = true
          events.log('error', 'audit records lost: the spill files are full (audit.spill_max_bytes); counted in bouncer_audit_dropped_total until the sink is back', { sink: sink.name, spill_max_bytes: err.maxBytes })
        }
        return kept
      } finally {
        appending--
      }
    })
    appends = task
    return task
  }

  function goDown(reason: string, err?: unknown): void {
    if (mode === 'spill') return
    mode = 'spill'
    events.log('warn', 'audit sink unavailable: spilling records to disk until it is back', { sink: sink.name, reason, spill: spill.path, err })
  }

  function handle(rows: readonly StoredRow[], queued = 0): Promise<boolean> {
    if (mode === 'sink' && backlog + queued + rows.length > options.capacity) goDown(`more than ${options.capacity} records waiting`)
    if (mode === 'spill') return appendToSpill(rows)
    backlog += rows.length
    const task = writes.then(async () => {
      try {
        // An earlier batch failed while this one waited: keep the order, spill it too.
        if (mode === 'spill') return await appendToSpill(rows)
        try {
          await writeWithin(sink.write(rows))
          events.written(sink.name, rows.length)
          return true
        } catch (err) {
          goDown('a write failed', err)
          // A write given up on at its deadline runs on and may yet store the rows: not known lost.
          return (await appendToSpill(rows)) || err instanceof DeadlineExceeded
        }
      } finally {
        backlog -= rows.length
      }
    })
    writes = task
    return task
  }

  /** The sink's write (or checkpoint), failed at the sink's deadline if it has one (the call itself runs on). */
  function writeWithin(write: Promise<void>): Promise<void> {
    const ms = sink.writeTimeoutMs
    if (ms === undefined) return write
    return withinDeadline(write, ms, `audit sink ${sink.name}`, () => {}).catch((err: unknown) => {
      // Every call given up on, not just the last (a checkpoint timed out after a write did).
      if (err instanceof DeadlineExceeded) straggler = Promise.all([straggler, write.catch(() => {})])
      throw err
    })
  }

  async function recover(): Promise<void> {
    if (mode === 'sink' || recovering || stopped) return
    recovering = true
    try {
      await writes // no write of the old mode may still be in flight
      await straggler // nor one given up on at its deadline
      if (!opened) {
        await sink.open()
        opened = true
      } else {
        await sink.ping()
      }
      let cursor = SPILL_START
      let replayed = 0
      for (;;) {
        await appends
        const { rows, next, damaged } = await spill.read(cursor, REPLAY_BATCH)
        for (const line of damaged) quarantined(line)
        if (rows.length > 0) {
          await sink.write(rows)
          events.replayed(sink.name, rows.length)
          replayed += rows.length
        }
        // The segments replayed are stored: their room is free again (under refuse, the requests
        // are served again once the spill is under its cap, not once all of it is replayed).
        spill.release(next)
        events.freed(sink.name)
        const progressed = next.segment !== cursor.segment || next.offset > cursor.offset
        cursor = next
        if (progressed || appending > 0) continue
        // Nothing left to read and no append in flight: bytes past the cursor can only be a line
        // without its newline (or an append that landed during the read: read again).
        if (spill.after(cursor) > 0) {
          quarantined(spill.repairTail())
          continue
        }
        spill.clear()
        mode = 'sink'
        losing = false
        events.freed(sink.name)
        break
      }
      events.log('info', 'audit sink is back: spilled records replayed in order', { sink: sink.name, replayed })
    } catch {
      // Still away: stay in spill mode and try again on the next tick.
    } finally {
      recovering = false
    }
  }

  return {
    name: sink.name,
    get up() {
      return mode === 'sink'
    },
    get backlog() {
      return backlog
    },
    handle,
    async drain() {
      await writes
      await appends
      stopped = true
      clearInterval(timer)
      await spill.close()
    },
    async checkpoint(checkpoint) {
      if (mode !== 'sink') return
      // Within the write deadline too: the writes queued behind it (and sync responses) wait on it.
      await (writes = writes.then(() => writeWithin(sink.checkpoint(checkpoint))).catch((err: unknown) => events.log('warn', 'audit checkpoint not kept in the sink', { sink: sink.name, err })))
    },
    async retention(beforeMs, sign) {
      if (mode !== 'sink') return
      const run = async () => {
        const deleted = await sink.deleteBefore(beforeMs, sign)
        if (deleted > 0) events.log('info', 'audit retention: old records deleted', { sink: sink.name, deleted })
      }
      const failed = (err: unknown) => events.log('warn', 'audit retention failed', { sink: sink.name, err })
      // A network sink's retention runs beside its writes, not ahead of them: its statements wait on
      // the server (a long delete, or a stall up to the pool's query timeout) and would hold every
      // batch, and sync responses, behind them (a review). It deletes only records past the window.
      if (sink.writeTimeoutMs !== undefined) await run().catch(failed)
      else await (writes = writes.then(run).catch(failed))
    },
  }
}
