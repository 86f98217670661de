// Found by a probe (helper): a request refused by several limits was answered for the first of
// them only: its Retry-After was that limit's wait (a rate's 0.2 s beside a quota spent for the
// minute), and its states stopped there. The in-process stores now read every check.
import { describe, expect, it } from 'vitest'
import { createMemoryStore } from '../../../src/limits/stores/memory.ts'
import { createSharedLimitsTable, createSharedMemoryStore } from '../../../src/limits/stores/shared-memory.ts'

const NOW = 5_000_000 // 20 s into a minute, 2,200 s before an hour's end
const pace = { key: 'pace|x', rate: { intervalMs: 1_000, burst: 1 }, quota: null }
const minute = { key: 'minute#q|x', rate: null, quota: { count: 1, periodMs: 60_000 } }
const hourly = { key: 'hourly#q|x', rate: null, quota: { count: 100, periodMs: 3_600_000 } }

describe.each([
  ['memory', () => createMemoryStore({ maxKeys: 100, now: () => NOW })],
  ['shared-memory', () => createSharedMemoryStore(createSharedLimitsTable(100), { now: () => NOW })],
] as const)('%s store: a request several limits refuse', (_name, make) => {
  it('is refused for the longest wait, with every check\'s state, and charges none', () => {
    const store = make()
    expect(store.take([pace, minute, hourly])).toMatchObject({ refused: -1 })
    // pace frees in 1 s, minute in 40 s; hourly would allow.
    expect(store.take([pace, minute, hourly])).toEqual({
      refused: 1,
      reason: 'limit',
      retryAfterMs: 40_000,
      states: [expect.objectContaining({ remaining: 0, resetMs: 1_000 }), expect.objectContaining({ remaining: 0, resetMs: 40_000 }), { remaining: 99, resetMs: 2_200_000 }],
    })
    expect(store.take([hourly]).states).toMatchObject([{ remaining: 98 }])
  })

  it('names the first of equal waits, and a rate when its wait is the longest', () => {
    const store = make()
    const even = { key: 'even|x', rate: { intervalMs: 40_000, burst: 1 }, quota: null }
    store.take([even, minute])
    expect(store.take([minute, even])).toMatchObject({ refused: 0, retryAfterMs: 40_000 })
    expect(store.take([even, minute])).toMatchObject({ refused: 0, retryAfterMs: 40_000 })
    const later = { key: 'later|x', rate: { intervalMs: 50_000, burst: 1 }, quota: null }
    store.take([later])
    expect(store.take([minute, later])).toMatchObject({ refused: 1, retryAfterMs: 50_000 })
  })
})
