// The sink runner's write deadline, with a sink of our own whose calls the test answers (the
// PostgreSQL case itself, through a frozen network relay, is audit-postgres-stall.test.ts): a call
// left unanswered past `writeTimeoutMs` must not hold the records queued behind it.
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterEach, expect, it } from 'vitest'
import type { Checkpoint } from '../../../src/audit/checkpoint.ts'
import { chain, GENESIS_HASH } from '../../../src/audit/record.ts'
import { createSinkRunner, type RunnerEvents } from '../../../src/audit/sink-runner.ts'
import type { AuditSink, StoredRow } from '../../../src/audit/sinks/sink.ts'
import { spillFor } from '../../../src/audit/spill.ts'
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
