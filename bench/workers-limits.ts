// Why server.workers runs threads, not processes (issue 15, point 5): a limit must hold across
// workers, so every limited request needs one decision from shared state. What one decision costs:
//   - the shared table (SharedArrayBuffer + Atomics lock), taken in the request's own thread;
//   - the same with two threads taking at once (the lock contended);
//   - asking an owner thread over a MessagePort (what "one owner thread" would cost);
//   - asking an owner process over child_process IPC (what worker processes would need, having no
//     shared memory).
// Run: node bench/workers-limits.ts [--quick]. Each decision is two limits for one of 1,000 callers.
import { fork } from 'node:child_process'
import { once } from 'node:events'
import { fileURLToPath } from 'node:url'
import { isMainThread, parentPort, Worker, workerData } from 'node:worker_threads'
import { createMemoryStore } from '../src/limits/stores/memory.ts'
import { createSharedLimitsTable, createSharedMemoryStore, type SharedLimitsTable } from '../src/limits/stores/shared-memory.ts'
import type { Check } from '../src/limits/store.ts'

const SELF = fileURLToPath(import.meta.url)

function checksFor(i: number): Check[] {
  const who = i % 1_000
  return [
    { key: `per-principal|p:4:corp:s:svc-${who}`, rate: { intervalMs: 0.001, burst: 1_000_000_000 }, quota: null },
    { key: `daily#q|p:4:corp:s:svc-${who}`, rate: null, quota: { count: 1_000_000_000, periodMs: 86_400_000 } },
  ]
}

function takeMany(table: SharedLimitsTable, n: number): number {
  const store = createSharedMemoryStore(table)
  const started = performance.now()
  for (let i = 0; i < n; i++) store.take(checksFor(i))
  return ((performance.now() - started) * 1e6) / n
}

export interface WorkersLimitsRow {
  case: string
  nsPerDecision: number
}

export async function benchWorkersLimits(quick: boolean): Promise<WorkersLimitsRow[]> {
  const n = quick ? 20_000 : 300_000
  const rows: WorkersLimitsRow[] = []

  const memory = createMemoryStore({ maxKeys: 100_000 })
  for (let i = 0; i < 10_000; i++) memory.take(checksFor(i))
  const started = performance.now()
  for (let i = 0; i < n; i++) memory.take(checksFor(i))
  rows.push({ case: 'memory store, one process (server.workers: 1)', nsPerDecision: ((performance.now() - started) * 1e6) / n })

  const table = createSharedLimitsTable(100_000)
  takeMany(table, 10_000)
  rows.push({ case: 'shared table, one thread taking', nsPerDecision: takeMany(table, n) })

  const pair = [0, 1].map(() => new Worker(SELF, { workerData: { role: 'taker', table, n } }))
  const each = await Promise.all(pair.map(async (w) => (await once(w, 'message'))[0] as number))
  rows.push({ case: 'shared table, two threads taking at once (per decision, each thread)', nsPerDecision: Math.max(...each) })

  const owner = new Worker(SELF, { workerData: { role: 'owner' } })
  rows.push({ case: 'asking an owner thread (MessagePort round trip, one at a time)', nsPerDecision: await roundTrips((m) => owner.postMessage(m), (f) => owner.on('message', f), quick ? 5_000 : 50_000) })
  await owner.terminate()

  const child = fork(SELF, ['--owner'], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] })
  rows.push({ case: 'asking an owner process (child_process IPC round trip, one at a time)', nsPerDecision: await roundTrips((m) => child.send(m), (f) => child.on('message', f), quick ? 5_000 : 50_000) })
  child.kill()
  return rows
}

async function roundTrips(send: (m: number) => void, listen: (f: (m: unknown) => void) => void, n: number): Promise<number> {
  let done = 0
  let finished: () => void = () => {}
  const all = new Promise<void>((resolve) => (finished = resolve))
  let started = 0
  listen(() => {
    done++
    if (done === 1_000) started = performance.now() // after a warm-up
    if (done === n + 1_000) finished()
    else send(done)
  })
  send(0)
  await all
  return ((performance.now() - started) * 1e6) / n
}

function serveDecisions(on: (f: (m: number) => void) => void, reply: (m: boolean) => void): void {
  const store = createMemoryStore({ maxKeys: 100_000 })
  on((i) => reply(store.take(checksFor(i)).refused === -1))
}

if (!isMainThread) {
  const data = workerData as { role: 'taker'; table: SharedLimitsTable; n: number } | { role: 'owner' }
  if (data.role === 'taker') {
    takeMany(data.table, 10_000)
    parentPort?.postMessage(takeMany(data.table, data.n))
  } else serveDecisions((f) => parentPort?.on('message', f), (m) => parentPort?.postMessage(m))
} else if (process.argv.includes('--owner')) {
  serveDecisions((f) => process.on('message', f), (m) => process.send?.(m))
} else if (process.argv[1] === SELF) {
  const rows = await benchWorkersLimits(process.argv.includes('--quick'))
  console.log('| one limit decision (two limits) | ns |\n|---|---:|')
  for (const row of rows) console.log(`| ${row.case} | ${Math.round(row.nsPerDecision)} |`)
}
