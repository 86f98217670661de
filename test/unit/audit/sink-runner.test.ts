// The sink runner's write deadline, with a sink of our own whose calls the test answers (the
// PostgreSQL case itself, through a frozen network relay, is audit-postgres-stall.test.ts): a call
// left unanswered past `writeTimeoutMs` must not hold the records queued behind it.
import { mkdtempSync, readdirSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { basename, join } from 'node:path'
import { afterEach, expect, it } from 'vitest'
import type { Checkpoint } from '../../../src/audit/checkpoint.ts'
import { chain, GENESIS_HASH } from '../../../src/audit/record.ts'
import { createSinkRunner, type RunnerEvents } from '../../../src/audit/sink-runner.ts'
import type { AuditSink, StoredRow } from '../../../src/audit/sinks/sink.ts'
import { spillBudget } from '../../../src/audit/spill-budget.ts'
import { SPILL_START, spillFor } from '../../../src/audit/spill.ts'
import { deferred } from '../../helpers/wait.ts'

const dirs: string[] = []
afterEach(() => {
  for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true })
})

/** A sink whose calls wait for the test while `held`; what it stored, in order. */
function heldSink(writeTimeoutMs: number) {
  const stored: number[] = []
  let gate: ReturnType<typeof deferred<void>> | null = null
  const wait = () => (gate ? gate.promise : Promise.resolve())
  const sink: AuditSink = {
    name: 'held',
    writeTimeoutMs,
    open: async () => {},
    head: async () => null,
    async write(rows) {
      await wait()
      for (const row of rows) if (!stored.includes(row.seq)) stored.push(row.seq)
    },
    checkpoint: wait,
    ping: wait,
    deleteBefore: async () => 0,
    close: async () => {},
  }
  return {
    sink,
    stored,
    hold: () => void (gate = deferred()),
    release: () => {
      gate?.resolve()
      gate = null
    },
  }
}

function runnerFor(sink: AuditSink) {
  const dir = mkdtempSync(join(tmpdir(), 'bouncer-runner-'))
  dirs.push(dir)
  const logs: string[] = []
  const events: RunnerEvents = {
    log: (_level, msg) => void logs.push(msg),
    written() {},
    spilled() {},
    replayed() {},
    freed() {},
    dropped() {},
    quarantined() {},
  }
  return { runner: createSinkRunner(sink, spillFor(dir, sink.name), { capacity: 1_000, durable: false, events, opened: true }), logs }
}

/** A whole record (a spilled line is checked before its replay); the chain's hashes do not matter here. */
const row = (seq: number): StoredRow => ({
  chain: 'c',
  seq,
  record: chain({
    id: `00000000-0000-4000-8000-${String(seq).padStart(12, '0')}`, time: '2026-12-04T12:00:00.000Z', request_id: `r${seq}`, trace_id: null,
    method: 'GET', path: '/x', route: 'x', status: 200, decision: 'allow', code: null, detail: null, statement: 'S', issuer: null,
    subject: null, client_id: null, roles: [], source_ip: '127.0.0.1', user_agent: null, upstream: 'api', upstream_status: 200,
    duration_ms: 1, bytes_in: 0, bytes_out: 2, limit: null,
  }, GENESIS_HASH),
})

it('a write unanswered past the deadline is spilled and the sink reads down; the replay waits for it, and each record is stored once, in order', async () => {
  const held = heldSink(100)
  const { runner, logs } = runnerFor(held.sink)
  await runner.handle([row(1)])
  held.hold()
  const started = Date.now()
  await runner.handle([row(2)])
  expect(Date.now() - started).toBeLessThan(2_000)
  expect(runner.up).toBe(false)
  await runner.handle([row(3)]) // straight to the spill
  held.release() // the held write lands, then the recovery (every second) replays 2 and 3
  await expect.poll(() => runner.up, { timeout: 5_000 }).toBe(true)
  expect(held.stored).toEqual([1, 2, 3])
  expect(logs).toContain('audit sink unavailable: spilling records to disk until it is back')
  await runner.drain()
})

it('a checkpoint unanswered past the deadline does not hold the writes queued behind it', async () => {
  const held = heldSink(100)
  const { runner, logs } = runnerFor(held.sink)
  held.hold()
  const checkpoint = runner.checkpoint({ chain: 'c', count: 1 } as unknown as Checkpoint)
  const started = Date.now()
  await runner.handle([row(1)]) // behind the checkpoint, then held itself: spilled at its deadline
  await checkpoint
  expect(Date.now() - started).toBeLessThan(2_000)
  expect(logs).toContain('audit checkpoint not kept in the sink')
  held.release()
  await expect.poll(() => runner.up, { timeout: 5_000 }).toBe(true)
  expect(held.stored).toEqual([1])
  await runner.drain()
})

it('a network sink\'s retention, stalled, does not hold the writes behind it', async () => {
  const held = heldSink(100)
  const deleting = deferred<void>()
  const sink: AuditSink = { ...held.sink, deleteBefore: async () => (await deleting.promise, 0) }
  const { runner } = runnerFor(sink)
  const retention = runner.retention(Date.now(), () => { throw new Error('nothing is cut') }) // the server holds its delete
  await runner.handle([row(1)]) // was queued behind it for as long as the server held it
  expect(held.stored).toEqual([1])
  expect(runner.up).toBe(true)
  deleting.resolve()
  await retention
  await runner.drain()
})

// A probe: a batch bigger than the room left in the spill (audit.spill_max_bytes, or a
// server.workers worker's share of it) was dropped whole, its records counted lost while the files
// had room for most of them: at a 1 MiB cap, a burst's batch of 2,000 records left the spill empty.
it('a spill with room for part of a batch keeps its first records and drops only the rest', async () => {
  const away = async () => {
    throw new Error('the sink is away')
  }
  const sink: AuditSink = { ...heldSink(100).sink, write: away, ping: away }
  const dir = mkdtempSync(join(tmpdir(), 'bouncer-runner-'))
  dirs.push(dir)
  const spill = spillFor(dir, sink.name)
  const counted = { spilled: 0, dropped: 0 }
  const events: RunnerEvents = {
    log() {}, written() {}, replayed() {}, freed() {}, quarantined() {},
    spilled: (_sink, rows) => void (counted.spilled += rows),
    dropped: (_sink, rows) => void (counted.dropped += rows),
  }
  const CAP = 1_048_576
  const runner = createSinkRunner(sink, spill, { capacity: 100_000, durable: false, events, opened: true, budget: spillBudget(CAP, 0, () => [spill]) })
  const rows = Array.from({ length: 2_000 }, (_, i) => row(i + 1))
  const lineBytes = Buffer.byteLength(`${JSON.stringify(rows[0])}\n`)
  expect(lineBytes * rows.length).toBeGreaterThan(CAP) // the batch is bigger than the cap

  await runner.handle(rows)
  expect(counted.spilled + counted.dropped).toBe(rows.length)
  expect(spill.size()).toBeLessThanOrEqual(CAP)
  expect(spill.size()).toBeGreaterThan(CAP - 2 * lineBytes) // full, to within a record
  const kept = await spill.read(SPILL_START, rows.length)
  expect(kept.rows.map((r) => r.seq)).toEqual(rows.slice(0, counted.spilled).map((r) => r.seq)) // the first ones, in order
  await runner.handle([row(2_001)]) // no room: dropped
  expect(counted.dropped).toBe(rows.length + 1 - counted.spilled)
  await runner.drain()
})

// A full spill under on_spill_full: refuse kept the gateway refusing until the whole file was
// replayed and emptied (a minute or more for 1 GiB into PostgreSQL: bench/spill-replay.ts). In
// segments, each replayed one is deleted as soon as the sink has its records: the room comes back
// while the replay goes on.
it('a replay frees the spill\'s room segment by segment, before it ends', async () => {
  let away = true
  const stored: number[] = []
  const second = deferred<void>()
  let writes = 0
  const sink: AuditSink = {
    ...heldSink(100).sink,
    async write(rows) {
      if (away) throw new Error('the sink is away')
      if (++writes === 2) await second.promise // the replay's second batch waits here
      for (const r of rows) stored.push(r.seq)
    },
    async ping() {
      if (away) throw new Error('the sink is away')
    },
  }
  const dir = mkdtempSync(join(tmpdir(), 'bouncer-runner-'))
  dirs.push(dir)
  const spill = spillFor(dir, sink.name, undefined, 65_536)
  // The spill's size each time the runner says it freed room: the worker looks at once (a /readyz
  // read right after a replay said not ready, the next second's stats not yet sent).
  const freedAt: number[] = []
  const events: RunnerEvents = { log() {}, written() {}, replayed() {}, freed: () => void freedAt.push(spill.size()), quarantined() {}, spilled() {}, dropped() {} }
  const runner = createSinkRunner(sink, spill, { capacity: 100_000, durable: false, events, opened: true })
  const rows = Array.from({ length: 5_000 }, (_, i) => row(i + 1))
  for (let i = 0; i < rows.length; i += 500) await runner.handle(rows.slice(i, i + 500)) // spilled: the sink is away
  const full = spill.size()
  const segments = readdirSync(dir).filter((f) => /\.seg-\d+\.ndjson$/.test(f)).length
  expect(segments).toBe(9) // ~3 MB: a segment a batch here (a batch bigger than a segment is not split)

  away = false // back: the recovery (every second) replays 2,000 lines, stores them, then waits in the second write
  await expect.poll(() => writes, { timeout: 5_000 }).toBe(2)
  expect(stored).toHaveLength(2_000)
  // What the sink has is gone from the disk already, the rest still waiting.
  expect(spill.size()).toBeLessThan(full - 1_000 * (full / rows.length))
  expect(spill.size()).toBeGreaterThan(full / 2)
  expect(freedAt).toEqual([spill.size()]) // said as the first batch's segments went
  second.resolve()
  await expect.poll(() => runner.up, { timeout: 5_000 }).toBe(true)
  expect(stored).toEqual(rows.map((r) => r.seq)) // every record once, in order
  expect(spill.size()).toBe(0)
  expect(freedAt.at(-1)).toBe(0) // and once it is empty, as the sink is up
  expect(readdirSync(dir).filter((f) => f.endsWith('.ndjson'))).toEqual([basename(spill.path)]) // the first, empty
  await runner.handle([row(5_001)])
  expect(stored.at(-1)).toBe(5_001)
  await runner.drain()
})
