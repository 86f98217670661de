// Found by a probe (helper): the workers' shared table was sized by max_keys at start, and a reload
// that changed max_keys made a store on the same table with the same bound: raised, new keys were
// still refused; lowered, they were still taken. A store now takes its config's max_keys, growing
// the table (in place, for every store on it) when it is higher.
import { describe, expect, it } from 'vitest'
import { createSharedLimitsTable, createSharedMemoryStore } from '../../../src/limits/stores/shared-memory.ts'

const NOW = 5_000_000
const daily = (who: string) => [{ key: `daily#q|${who}`, rate: null, quota: { count: 10, periodMs: 86_400_000 } }]

describe('the shared limits table and a changed max_keys', () => {
  it('grows for a higher one, keeping every entry, for the stores made before it too', () => {
    const table = createSharedLimitsTable(100)
    const before = createSharedMemoryStore(table, { now: () => NOW })
    for (let i = 0; i < 100; i++) expect(before.take(daily(`c${i}`)).refused).toBe(-1)
    expect(before.take(daily('one-more'))).toMatchObject({ refused: 0, reason: 'full' })
    const start = table.buffer.byteLength

    const raised = createSharedMemoryStore(table, { maxKeys: 5_000, now: () => NOW })
    expect(table.buffer.byteLength).toBeGreaterThan(start)
    for (let i = 0; i < 3_000; i++) expect(raised.take(daily(`new${i}`)).refused).toBe(-1)
    expect(raised.size).toBe(3_100)
    // Every entry moved to its new slot, and the older store (another worker's, say) finds them there.
    for (let i = 0; i < 100; i++) expect(before.take(daily(`c${i}`)).states).toMatchObject([{ remaining: 8 }])
    for (let i = 0; i < 100; i++) expect(raised.take(daily(`c${i}`)).states).toMatchObject([{ remaining: 7 }])
    expect(raised.take(daily('new2999')).states).toMatchObject([{ remaining: 8 }])
    // Its refusals are the earlier store's: /readyz reports none for this one.
    expect(raised.status()).toBe('memory (shared by the workers): 3100 keys')
    // The older store keeps its own bound.
    expect(before.take(daily('later'))).toMatchObject({ refused: 0, reason: 'full' })
  })

  it('bounds admission by a lower one, dropping nothing', () => {
    const table = createSharedLimitsTable(1_000)
    const start = createSharedMemoryStore(table, { now: () => NOW })
    for (let i = 0; i < 300; i++) start.take(daily(`c${i}`))
    const lowered = createSharedMemoryStore(table, { maxKeys: 100, now: () => NOW })
    expect(lowered.take(daily('new'))).toMatchObject({ refused: 0, reason: 'full' })
    expect(lowered.take(daily('c299')).states).toMatchObject([{ remaining: 8 }])
    expect(lowered.size).toBe(300)
  })
})
