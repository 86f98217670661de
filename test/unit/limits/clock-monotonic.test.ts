// limits/clock.ts rebases on the wall clock when the two drift apart, and a rebase knows the wall
// clock's phase to within 1.5 ms: it put the clock back that much, and a limit saw time reverse (the
// second take of a burst of 2 refused: limits-clock-step-back failed so in CI). A frozen Date (the
// wall clock as NTP slewing leaves it against performance.now, only faster) brings a rebase every
// ~1.5 ms of real time.
import { afterEach, describe, expect, it, vi } from 'vitest'
import { limitsNow } from '../../../src/limits/clock.ts'

afterEach(() => {
  vi.useRealTimers()
})

describe("the limits' clock", () => {
  it('never goes back by less than a step, through the rebases of a wall clock that stands still', () => {
    vi.useFakeTimers({ toFake: ['Date'] })
    vi.setSystemTime(new Date('2027-03-14T12:00:00.000Z'))
    const readings: number[] = []
    const until = performance.now() + 20
    while (performance.now() < until) readings.push(limitsNow())
    const backwards = readings.filter((reading, i) => i > 0 && reading < (readings[i - 1] as number))
    expect(readings.length).toBeGreaterThan(100)
    expect(backwards).toEqual([])
    // …but a real step back (two hours) is followed.
    vi.setSystemTime(new Date('2027-03-14T10:00:00.000Z'))
    expect(limitsNow()).toBeLessThan(Date.parse('2027-03-14T10:00:00.002Z'))
  })
})
