// Found by an adversarial probe (helper): when a later limit of a request refused, the in-process stores reported the earlier limits' state after a take that all or nothing never made (one fewer remaining, one interval more to reset).
import { describe, expect, it } from 'vitest'
import { createMemoryStore } from '../../../src/limits/stores/memory.ts'
import { createSharedLimitsTable, createSharedMemoryStore } from '../../../src/limits/stores/shared-memory.ts'

describe.each([
  ['memory', () => createMemoryStore({ maxKeys: 100, now: () => 5_000_000 })],
  ['shared-memory', () => createSharedMemoryStore(createSharedLimitsTable(100), { now: () => 5_000_000 })],
] as const)('%s store: a request refused by its last limit', (_name, make) => {
  it('reports its rate and quota checks as they stand, and charges them nothing', () => {
    const store = make()
    const checks = [
      { key: 'loose|x', rate: { intervalMs: 1_000, burst: 5 }, quota: null },
      { key: 'daily|x', rate: null, quota: { count: 10, periodMs: 86_400_000 } },
      { key: 'tight|x', rate: { intervalMs: 1_000, burst: 1 }, quota: null },
    ]
    expect(store.take(checks)).toMatchObject({ refused: -1, states: [{ remaining: 4, resetMs: 1_000 }, { remaining: 9 }, { remaining: 0, resetMs: 1_000 }] })
    const refused = store.take(checks)
    expect(refused).toMatchObject({ refused: 2, retryAfterMs: 1_000, states: [{ remaining: 4, resetMs: 1_000 }, { remaining: 9 }, { remaining: 0, resetMs: 1_000 }] })
    expect(store.take(checks.slice(0, 2))).toMatchObject({ refused: -1, states: [{ remaining: 3, resetMs: 2_000 }, { remaining: 8 }] })
  })
})
