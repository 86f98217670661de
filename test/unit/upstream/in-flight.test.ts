// The workers' in-flight table (src/upstream/in-flight.ts): one ceiling for every column, by name
// across reloads, and a dead worker's share given back. Threads are stood in for by columns here;
// test/integration/workers-max-concurrent.test.ts runs it with real workers.
import { describe, expect, it } from 'vitest'
import { inFlightCounts, releaseWorkerInFlight, workersInFlightTable } from '../../../src/upstream/in-flight.ts'

describe('the workers\' in-flight table', () => {
  it('two workers share one ceiling; a worker\'s share is given back when it ends, and no more', () => {
    const buffer = workersInFlightTable(2)
    const w1 = inFlightCounts({ buffer, column: 0 }).acquire('api')
    const w2 = inFlightCounts({ buffer, column: 1 }).acquire('api')
    expect([w1.enter(2), w2.enter(2), w2.enter(2), w1.enter(2)]).toEqual([true, true, false, false])
    expect(w2.full(2)).toBe(true)
    expect(releaseWorkerInFlight(buffer, 1)).toBe(1) // w2 ended holding one
    expect([w1.count(), w2.count()]).toEqual([1, 1])
    expect(releaseWorkerInFlight(buffer, 1)).toBe(0)
    const replacement = inFlightCounts({ buffer, column: 1 }).acquire('api')
    expect([replacement.enter(2), replacement.enter(2)]).toEqual([true, false])
    w1.leave(2)
    replacement.leave(2)
    expect(w1.count()).toBe(0)
  })

  it('a name keeps its count across a reload (a new acquire), another name has its own', () => {
    const buffer = workersInFlightTable(2)
    const counts = inFlightCounts({ buffer, column: 0 })
    const before = counts.acquire('api')
    expect(before.enter(1)).toBe(true)
    const after = counts.acquire('api') // the reload's upstream, before the old one is released
    counts.release('api')
    expect(after.enter(1)).toBe(false)
    expect(inFlightCounts({ buffer, column: 1 }).acquire('billing').enter(1)).toBe(true)
  })

  it('an upstream without a ceiling shares nothing: no other worker sees its requests', () => {
    const buffer = workersInFlightTable(2)
    const w1 = inFlightCounts({ buffer, column: 0 }).acquire('api')
    const w2 = inFlightCounts({ buffer, column: 1 }).acquire('api')
    expect(w1.enter(Number.POSITIVE_INFINITY)).toBe(true)
    expect([w1.count(), w2.count(), releaseWorkerInFlight(buffer, 0)]).toEqual([1, 0, 0])
  })
})
