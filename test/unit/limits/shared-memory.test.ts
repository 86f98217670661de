// The limits table the workers of server.workers share: the memory store's semantics, exact across
// threads, and bounded without forgetting live state.
import { once } from 'node:events'
import { Worker } from 'node:worker_threads'
import { describe, expect, it } from 'vitest'
import { createSharedLimitsTable, createSharedMemoryStore, releaseLockOf } from '../../../src/limits/stores/shared-memory.ts'

const quota = (count: number) => ({ count, periodMs: 60_000 })
const rate = { intervalMs: 100, burst: 3 }

describe('shared limits table', () => {
  it('two stores on one table draw from one bucket', () => {
    let at = 1_000_000
    const table = createSharedLimitsTable(100)
    const a = createSharedMemoryStore(table, { now: () => at })
    const b = createSharedMemoryStore(table, { now: () => at })
    const check = [{ key: 'per-principal|p:3:idp:s:alice', rate, quota: null }]
    expect([a, b, a, b].map((s) => s.take(check).refused)).toEqual([-1, -1, -1, 0])
    at += 100
    expect(b.take(check)).toMatchObject({ refused: -1, states: [{ remaining: 0 }] })
    expect(a.size).toBe(1)
  })

  it('keeps quotas per window, and long or ill-formed keys apart', () => {
    let at = 60_000 * 1000
    const store = createSharedMemoryStore(createSharedLimitsTable(100), { now: () => at })
    const long = `q#q|h:${'x'.repeat(300)}`
    const keys = [long, `${long}y`, 'q#q|h:\ud800', 'q#q|h:\udc00', 'q#q|h:é']
    for (const key of keys) {
      expect(store.take([{ key, rate: null, quota: quota(2) }]).refused).toBe(-1)
      expect(store.take([{ key, rate: null, quota: quota(2) }]).refused).toBe(-1)
      expect(store.take([{ key, rate: null, quota: quota(2) }]).refused).toBe(0)
    }
    at += 60_000 // the next window
    expect(store.take([{ key: long, rate: null, quota: quota(2) }])).toMatchObject({ refused: -1, states: [{ remaining: 1 }] })
  })

  it('charges nothing when one limit of a request refuses', () => {
    const store = createSharedMemoryStore(createSharedLimitsTable(100), { now: () => 5_000_000 })
    const checks = [{ key: 'a|x', rate: null, quota: quota(5) }, { key: 'b|x', rate: null, quota: quota(1) }]
    expect(store.take(checks).refused).toBe(-1)
    expect(store.take(checks).refused).toBe(1)
    expect(store.take([checks[0] as (typeof checks)[0]])).toMatchObject({ refused: -1, states: [{ remaining: 3 }] })
  })

  it('drops decayed keys to make room, never live ones, and refuses a new key when full', () => {
    let at = 10_000_000
    const store = createSharedMemoryStore(createSharedLimitsTable(100), { now: () => at })
    for (let i = 0; i < 100; i++) expect(store.take([{ key: `r|ip:${i}`, rate, quota: null }]).refused).toBe(-1)
    expect(store.take([{ key: 'r|ip:new', rate, quota: null }])).toMatchObject({ refused: 0, reason: 'full' })
    // Existing keys keep working, and stay spent.
    for (let i = 0; i < 100; i++) expect(store.take([{ key: `r|ip:${i}`, rate, quota: null }]).refused).toBe(-1)
    at += 1_000 // every bucket refilled: all 100 decayed
    expect(store.take([{ key: 'r|ip:new', rate, quota: null }]).refused).toBe(-1)
    expect(store.size).toBe(1)
    // Every one of many keys is found again after sweeps moved entries around.
    for (let round = 0; round < 3; round++) {
      for (let i = 0; i < 99; i++) store.take([{ key: `q#q|${round}:${i}`, rate: null, quota: { count: 1, periodMs: 1_000 } }])
      for (let i = 0; i < 99; i++) expect(store.take([{ key: `q#q|${round}:${i}`, rate: null, quota: { count: 1, periodMs: 1_000 } }]).refused).toBe(0)
      at += 1_000
    }
  })

  it('is exact across threads taking the same key at once', async () => {
    const table = createSharedLimitsTable(10_000)
    const url = new URL('../../fixtures/limits/shared-taker.ts', import.meta.url)
    const workers = [0, 1, 2].map(() => new Worker(url, { workerData: { table, count: 2_000 } }))
    const allowed = await Promise.all(workers.map(async (w) => (await once(w, 'message'))[0] as number))
    expect(allowed.reduce((a, b) => a + b, 0)).toBe(1_000)
  })

  it('a worker terminated inside a check leaves the lock held until the primary releases it', async () => {
    const table = createSharedLimitsTable(100)
    const holder = new Worker(new URL('../../fixtures/limits/lock-holder.ts', import.meta.url), { workerData: { table } })
    const threadId = holder.threadId
    await once(holder, 'message')
    await holder.terminate() // as the primary's hard stop does: no finally runs
    const lockWord = new Int32Array(table.buffer, 0, 1)
    expect(Atomics.load(lockWord, 0)).not.toBe(0) // every other worker's next check would wait for ever
    expect(releaseLockOf(table, threadId + 1)).toBe(false) // not that thread's lock: left alone
    expect(releaseLockOf(table, threadId)).toBe(true)
    const store = createSharedMemoryStore(table)
    expect(store.take([{ key: 'r|ip:1', rate, quota: null }]).refused).toBe(-1)
    expect(releaseLockOf(table, threadId)).toBe(false) // released once
  })
})
