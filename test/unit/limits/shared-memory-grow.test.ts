// Found in review: with server.workers the supervisor stages a reload in every worker at once, and
// every store made for a higher limits_store.max_keys copied the whole table aside to grow it,
// though only the first to take the lock used its copy (4 workers, 100,000 -> 1,000,000 keys: 32 MB
// and 420-650 ms each on its own event loop; 256 MB each at 1M -> 4M). And one that died mid-move
// left the table grown and the entries it had not moved yet gone: spent quotas fresh again.
import { once } from 'node:events'
import { Worker } from 'node:worker_threads'
import { describe, expect, it } from 'vitest'
import { createSharedLimitsTable, createSharedMemoryStore, releaseLockOf, type SharedLimitsTable } from '../../../src/limits/stores/shared-memory.ts'

const NOW = 5_000_000
const daily = (who: string) => [{ key: `daily#q|${who}`, rate: null, quota: { count: 10, periodMs: 86_400_000 } }]
const module = new URL('../../../src/limits/stores/shared-memory.ts', import.meta.url).href
// The table's header, as Int32: [9] its slots, [10] the capacities a move has written to, [11] the
// thread (id + 1) growing it.
const SLOTS = 9
const WRITTEN = 10
const GROWER = 11

interface Grown {
  moves: Array<{ keys: number }>
  allocated: number
}

/**
 * A thread that makes a store for `maxKeys` on the table once `gate` opens, and reports the moves
 * its store logged and the bytes of ArrayBuffers it allocated meanwhile.
 */
function grower(table: SharedLimitsTable, maxKeys: number, gate: Int32Array): Worker {
  const code = `
    const { parentPort, workerData } = require('node:worker_threads')
    import(workerData.module).then(({ createSharedMemoryStore }) => {
      const moves = []
      const logger = { info: (fields) => moves.push(fields), warn() {}, error() {} }
      parentPort.postMessage('ready')
      Atomics.wait(workerData.gate, 0, 0)
      const before = process.memoryUsage().arrayBuffers
      createSharedMemoryStore(workerData.table, { maxKeys: workerData.maxKeys, logger })
      parentPort.postMessage({ moves, allocated: process.memoryUsage().arrayBuffers - before })
    })`
  return new Worker(code, { eval: true, workerData: { module, table, maxKeys, gate } })
}

function filled(maxKeys: number, entries: number) {
  const table = createSharedLimitsTable(maxKeys)
  const store = createSharedMemoryStore(table, { now: () => NOW })
  for (let i = 0; i < entries; i++) expect(store.take(daily(`c${i}`)).refused).toBe(-1)
  return { table, store }
}

describe('the shared limits table grown by several workers at once', () => {
  it('one store moves the entries, the others neither copy the table nor wait for the move, and no entry is lost', async () => {
    const { table, store } = filled(20_000, 20_000)
    const copyBytes = 128 * 65_536 // what a copy of this table (65,536 slots) took
    const gate = new Int32Array(new SharedArrayBuffer(4))
    const workers = [0, 1, 2, 3].map(() => grower(table, 200_000, gate))
    try {
      await Promise.all(workers.map((w) => once(w, 'message')))
      Atomics.store(gate, 0, 1)
      Atomics.notify(gate, 0)
      const grown = await Promise.all(workers.map(async (w) => (await once(w, 'message'))[0] as Grown))

      expect(grown.flatMap((g) => g.moves)).toEqual([expect.objectContaining({ keys: 20_000, slots: 524_288 })])
      for (const g of grown) expect(g.allocated).toBeLessThan(copyBytes / 2)
      expect(new Int32Array(table.buffer, 0, 16)[SLOTS]).toBe(524_288)
      // Every quota keeps what it spent (1 of 10), seen by the store made before the grow and by one made after.
      for (let i = 0; i < 20_000; i++) expect(store.take(daily(`c${i}`)).states).toMatchObject([{ remaining: 8 }])
      const after = createSharedMemoryStore(table, { maxKeys: 200_000, now: () => NOW })
      for (let i = 0; i < 20_000; i += 97) expect(after.take(daily(`c${i}`)).states).toMatchObject([{ remaining: 7 }])
      expect(after.size).toBe(20_000)
    } finally {
      await Promise.all(workers.map((w) => w.terminate()))
    }
  })

  it('a store made while another grows the table admits no more keys than the table holds, and grows it if that one gave up', () => {
    const { table } = filled(100, 100) // 1,024 slots
    const header = new Int32Array(table.buffer, 0, 16)
    header[GROWER] = 99 // another thread (98) is growing it
    const moves: unknown[] = []
    const logger = { info: (fields: unknown) => moves.push(fields), warn() {}, error() {} } as never
    const raised = createSharedMemoryStore(table, { maxKeys: 5_000, now: () => NOW, logger })
    expect(header[SLOTS]).toBe(1_024)
    for (let i = 0; i < 412; i++) expect(raised.take(daily(`new${i}`)).refused).toBe(-1)
    expect(raised.take(daily('one-more'))).toMatchObject({ refused: 0, reason: 'full' })

    // That thread ended: the primary gives up its claim with its lock (it held none), and the next take grows the table.
    expect(releaseLockOf(table, 98)).toBe(false)
    expect(header[GROWER]).toBe(0)
    expect(raised.take(daily('one-more')).refused).toBe(-1)
    expect(header[SLOTS]).toBe(16_384)
    expect(moves).toEqual([expect.objectContaining({ keys: 512 })])
    for (let i = 0; i < 100; i++) expect(raised.take(daily(`c${i}`)).states).toMatchObject([{ remaining: 8 }])
    expect(raised.size).toBe(513)
  })

  it('a worker that dies mid-move leaves the old table whole, and the next store made for the higher max_keys moves again', async () => {
    const { table, store } = filled(50_000, 50_000) // 131,072 slots
    const header = new Int32Array(table.buffer, 0, 16)
    const wanted = 1_048_576 // for 400,000 keys
    const gate = new Int32Array(new SharedArrayBuffer(4))
    const worker = grower(table, 400_000, gate)
    const threadId = worker.threadId
    const exited = once(worker, 'exit')
    await once(worker, 'message')
    Atomics.store(gate, 0, 1)
    Atomics.notify(gate, 0)
    // While it writes the new table's pages (before the lock), a store made here for the same
    // max_keys leaves the growth to it; the moment its move starts, under the lock, the worker is
    // stopped, as the primary's hard stop or a heap limit would stop it (no finally runs).
    const deadline = Date.now() + 20_000
    while (Atomics.load(header, GROWER) === 0 && Date.now() < deadline);
    const waiting = createSharedMemoryStore(table, { maxKeys: 400_000, now: () => NOW })
    while ((Atomics.load(header, WRITTEN) & wanted) === 0 && Date.now() < deadline);
    void worker.terminate()
    await exited
    expect(Atomics.load(header, WRITTEN) & wanted).toBe(wanted)
    expect(header[SLOTS]).toBe(131_072) // not switched: the old table is the table

    expect(releaseLockOf(table, threadId)).toBe(true)
    expect(header[GROWER]).toBe(0)
    // Every entry where it was, for the stores of the old max_keys…
    for (let i = 0; i < 50_000; i += 7) expect(store.take(daily(`c${i}`)).states).toMatchObject([{ remaining: 8 }])
    // …and moved, over what the dead worker had half written, by the next take of the waiting store.
    expect(waiting.take(daily('new')).refused).toBe(-1)
    expect(header[SLOTS]).toBe(wanted)
    for (let i = 0; i < 50_000; i++) expect(waiting.take(daily(`c${i}`)).states).toMatchObject([{ remaining: i % 7 === 0 ? 7 : 8 }])
    expect(waiting.size).toBe(50_001)
  })
})
