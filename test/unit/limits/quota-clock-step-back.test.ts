// Found by the limits probe (helper): a wall clock stepped back across a quota's window boundary (an
// NTP step a few seconds after midnight UTC, or after any minute for a /m quota) handed the caller a
// fresh quota in the in-process stores: the entry held the later window's count, the earlier
// window read it as no count at all and overwrote it, and back in the later window that count was
// gone too. 3/d spent at 00:00:01 let 3 more through at 23:59:59 and 3 more again at 00:00:01.
// A count kept for a later window than the clock's now stands until that window ends.
import { describe, expect, it } from 'vitest'
import type { LimitsStore } from '../../../src/limits/store.ts'
import { createMemoryStore } from '../../../src/limits/stores/memory.ts'
import { createSharedLimitsTable, createSharedMemoryStore } from '../../../src/limits/stores/shared-memory.ts'

const DAY = 86_400_000
const MIDNIGHT = Date.UTC(2026, 11, 6)

describe.each([
  ['memory', (now: () => number): LimitsStore => createMemoryStore({ maxKeys: 100, now })],
  ['shared-memory', (now: () => number): LimitsStore => createSharedMemoryStore(createSharedLimitsTable(100), { now })],
] as const)('%s store: the wall clock stepped back across a quota window', (_name, make) => {
  it('a quota spent just after midnight stays spent, before midnight and after it again', async () => {
    let at = MIDNIGHT + 1_000
    const store = make(() => at)
    const check = [{ key: 'daily#q|p:4:corp:s:ann', rate: null, quota: { count: 3, periodMs: DAY } }]
    const take = async () => await store.take(check)
    expect([(await take()).refused, (await take()).refused, (await take()).refused]).toEqual([-1, -1, -1])
    expect(await take()).toMatchObject({ refused: 0, retryAfterMs: DAY - 1_000 })
    at = MIDNIGHT - 1_000 // stepped back two seconds: yesterday's last second
    // Still today's count, refused until today's window ends (on this clock, a day and a second away).
    expect(await take()).toMatchObject({ refused: 0, retryAfterMs: DAY + 1_000, states: [{ remaining: 0 }] })
    at = MIDNIGHT + 2_000
    expect(await take()).toMatchObject({ refused: 0, retryAfterMs: DAY - 2_000 })
    at = MIDNIGHT + DAY
    expect(await take()).toMatchObject({ refused: -1, states: [{ remaining: 2 }] })
  })

  it('a caller counted in the later window goes on counting there, not afresh', async () => {
    let at = MIDNIGHT + 1_000
    const store = make(() => at)
    const check = [{ key: 'daily#q|p:4:corp:s:bob', rate: null, quota: { count: 3, periodMs: DAY } }]
    expect((await store.take(check)).refused).toBe(-1)
    at = MIDNIGHT - 1_000
    expect(await store.take(check)).toMatchObject({ refused: -1, states: [{ remaining: 1 }] })
    at = MIDNIGHT + 1_500
    expect(await store.take(check)).toMatchObject({ refused: -1, states: [{ remaining: 0 }] })
    expect((await store.take(check)).refused).toBe(0)
  })
})
