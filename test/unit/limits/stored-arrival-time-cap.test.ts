// Found by an adversarial probe (helper): a rate's stored arrival time was honoured however far ahead of now it was, so a rate raised by reload (1/h -> 100/s) or a wall clock stepped back held callers to the old debt (Retry-After 3600, 7260) in the memory, shared-memory and Redis stores.
import { describe, expect, it } from 'vitest'
import { takeRate } from '../../../src/limits/bucket.ts'
import { createMemoryStore } from '../../../src/limits/stores/memory.ts'
import { createSharedLimitsTable, createSharedMemoryStore } from '../../../src/limits/stores/shared-memory.ts'

const HOUR = 3_600_000

describe('GCRA: the stored arrival time is at most an empty bucket ahead', () => {
  it('a spent bucket is spent under the new rate, for one of its intervals', () => {
    const spentUnderOldRate = 1_000_000 + HOUR // 1/h burst 1, just taken
    const refused = takeRate({ intervalMs: 10, burst: 100 }, spentUnderOldRate, 1_000_000)
    expect(refused).toEqual({ allowed: false, tat: 1_001_000, remaining: 0, resetMs: 1_000, retryAfterMs: 10 })
    // The stores keep the capped TAT (else the cap would slide with the clock): one interval later, one passes.
    expect(takeRate({ intervalMs: 10, burst: 100 }, refused.tat, 1_000_010)).toMatchObject({ allowed: true, tat: 1_001_010, remaining: 0, resetMs: 1_000 })
  })

  it('a full bucket stays full, and a partly spent one keeps its count when it fits', () => {
    expect(takeRate({ intervalMs: 10, burst: 100 }, 500, 1_000_000)).toMatchObject({ allowed: true, remaining: 99 })
    expect(takeRate({ intervalMs: 10, burst: 100 }, 1_000_300, 1_000_000)).toMatchObject({ allowed: true, remaining: 69, resetMs: 310 })
  })

  it.each([
    ['memory', () => { let at = 0; const store = createMemoryStore({ maxKeys: 100, now: () => at }); return { store, set: (t: number) => (at = t) } }],
    ['shared-memory', () => { let at = 0; const store = createSharedMemoryStore(createSharedLimitsTable(100), { now: () => at }); return { store, set: (t: number) => (at = t) } }],
  ] as const)('%s store: a clock stepped back two hours answers the policy\'s wait, not the step', (_name, make) => {
    const { store, set } = make()
    const check = [{ key: 'pace|h:s:clock', rate: { intervalMs: 60_000, burst: 2 }, quota: null }]
    set(10 * HOUR)
    expect([store.take(check).refused, store.take(check).refused, store.take(check).refused]).toEqual([-1, -1, 0])
    set(8 * HOUR)
    expect(store.take(check)).toMatchObject({ refused: 0, retryAfterMs: 60_000, states: [{ remaining: 0, resetMs: 120_000 }] })
    set(8 * HOUR + 60_000)
    expect(store.take(check)).toMatchObject({ refused: -1, states: [{ remaining: 0, resetMs: 120_000 }] })
  })
})
