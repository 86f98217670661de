// The in-process limits stores (memory, and the workers' shared table) read the clock in whole
// milliseconds (Date.now): a caller refused within a millisecond lost the rest of it, so a fast rate
// with a small burst passed less than its rate (5000/s burst 1 passed 1,000 a second, 3000/s burst
// 2 2,000, 25000/s burst 5 5,000). Driven through their own clock (Date and performance faked) by a
// caller who waits what each refusal says, a fraction of a millisecond, each now passes its rate to
// within 1% over a second.
import { afterEach, describe, expect, it, vi } from 'vitest'
import { parseRate, type LimitConfig } from '../../../src/config/index.ts'
import { compileRouteLimits } from '../../../src/limits/route-limits.ts'
import type { Check, LimitsStore, TakeResult } from '../../../src/limits/store.ts'
import { createMemoryStore } from '../../../src/limits/stores/memory.ts'
import { createSharedLimitsTable, createSharedMemoryStore } from '../../../src/limits/stores/shared-memory.ts'

afterEach(() => {
  vi.useRealTimers()
})

function checkOf(rate: string, burst: number): Check {
  const parsed = parseRate(rate)
  if (!parsed.ok) throw new Error(parsed.message)
  const limit = { name: 'fast', key: 'ip', rate: parsed.value, burst, ip_prefix_v6: 64 } as LimitConfig
  return { key: 'fast|127.0.0.1', rate: compileRouteLimits(['fast'], [limit])!.parts[0]!.rate, quota: null }
}

/**
 * What `store` (on its own clock) passes over one second after the burst to a caller who asks again
 * after each refusal's wait (retryAfterMs, a fraction of a millisecond here) and at once after each pass.
 */
function passedInASecond(makeStore: () => LimitsStore, check: Check): number {
  vi.useFakeTimers({ toFake: ['Date', 'performance'] })
  vi.setSystemTime(new Date('2027-03-14T12:00:00.000Z'))
  const store = makeStore()
  const take = () => store.take([check]) as TakeResult
  while (take().refused === -1); // the burst
  const end = performance.now() + 1000
  let passed = 0
  let steps = 0
  while (performance.now() < end) {
    const result = take()
    if (result.refused === -1) passed++
    else {
      expect(result.retryAfterMs).toBeLessThan(1) // a sub-millisecond step
      vi.advanceTimersByTime(result.retryAfterMs)
    }
    if (++steps > 1_000_000) throw new Error('the store never lets the caller through')
  }
  return passed
}

const stores: Array<[string, () => LimitsStore]> = [
  ['memory', () => createMemoryStore({ maxKeys: 100 })],
  ['shared table', () => createSharedMemoryStore(createSharedLimitsTable(100))],
]

describe.each(stores)('the %s store at sub-millisecond steps', (_name, makeStore) => {
  it.each([
    ['5000/s', 1, 5000],
    ['2000/s', 1, 2000],
    ['3000/s', 2, 3000],
    ['25000/s', 5, 25000],
  ])('%s burst %i passes its rate over a second, to within 1%', (rate, burst, perSecond) => {
    const passed = passedInASecond(makeStore, checkOf(rate, burst))
    expect(Math.abs(passed / perSecond - 1), `${passed} passed`).toBeLessThanOrEqual(0.01)
  })
})

describe('the stores’ clock', () => {
  it('follows the wall clock when it steps, and counts the fraction of a millisecond between', async () => {
    const { limitsNow } = await import('../../../src/limits/clock.ts')
    vi.useFakeTimers({ toFake: ['Date', 'performance'] })
    vi.setSystemTime(new Date('2027-03-14T12:00:00.000Z'))
    const noon = Date.parse('2027-03-14T12:00:00.000Z')
    expect(Math.abs(limitsNow() - noon)).toBeLessThan(1)
    const before = limitsNow()
    vi.advanceTimersByTime(0.25)
    expect(limitsNow() - before).toBeCloseTo(0.25, 6)
    vi.setSystemTime(new Date('2027-03-14T10:00:00.000Z')) // an NTP step two hours back
    expect(Math.abs(limitsNow() - Date.parse('2027-03-14T10:00:00.000Z'))).toBeLessThan(1)
  })
})
