// Found by the limits probe (helper): a count kept under an hourly quota, read after a reload made
// it daily, was taken for a count in a day 1,300 years ahead (an hour's index as a day's) and the
// caller was counted there. Both in-process stores: a changed window counts afresh.
import { describe, expect, it } from 'vitest'
import type { LimitsStore } from '../../../src/limits/store.ts'
import { createMemoryStore } from '../../../src/limits/stores/memory.ts'
import { createSharedLimitsTable, createSharedMemoryStore } from '../../../src/limits/stores/shared-memory.ts'

const HOUR = 3_600_000
const DAY = 86_400_000
const AT = Date.UTC(2026, 11, 6, 21, 30)

describe.each([
  ['memory', (now: () => number): LimitsStore => createMemoryStore({ maxKeys: 100, now })],
  ['shared-memory', (now: () => number): LimitsStore => createSharedMemoryStore(createSharedLimitsTable(100), { now })],
] as const)('%s store: a quota whose window a reload lengthened', (_name, make) => {
  it('counts afresh in the new window, which ends at the day\'s end', async () => {
    const store = make(() => AT)
    const key = 'q#q|h:s:ann'
    expect((await store.take([{ key, rate: null, quota: { count: 5, periodMs: HOUR } }])).refused).toBe(-1)
    expect((await store.take([{ key, rate: null, quota: { count: 5, periodMs: HOUR } }])).refused).toBe(-1)
    const daily = [{ key, rate: null, quota: { count: 3, periodMs: DAY } }]
    expect(await store.take(daily)).toMatchObject({ refused: -1, states: [{ remaining: 2, resetMs: DAY - (AT % DAY) }] })
    await store.take(daily)
    await store.take(daily)
    expect(await store.take(daily)).toMatchObject({ refused: 0, retryAfterMs: DAY - (AT % DAY) })
  })
})
