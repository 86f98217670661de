// Checks of limits against the store that keeps them. The in-process stores (limits_store memory,
// and the workers' shared table) read the clock in whole milliseconds: a caller refused until the
// next millisecond loses what was left of the current one, so a rate whose burst cannot carry a
// millisecond's worth of requests passes fewer than its rate (5000/s burst 1 passes 1,000 a second;
// Redis counts microseconds and keeps them).
import type { ConfigPath, Finding } from './diagnostics.ts'
import type { Config } from './schema.ts'
import { binaryInterval, type Rate } from './values.ts'

/** The share of a limit's rate the in-process stores must keep to be said to keep it. */
const KEPT_ENOUGH = 0.95
/** How long the simulation runs, in the stores' 1 ms ticks. */
const SIMULATED_MS = 1000

export function limitFindings(config: Config): Finding[] {
  if (config.limits_store.type !== 'memory') return []
  const findings: Finding[] = []
  const check = (path: ConfigPath, rate: Rate, configured: number | undefined) => {
    const burst = configured ?? rate.count
    if (keptShare(rate, burst) >= KEPT_ENOUGH) return
    const enough = burstKeeping(rate, burst)
    const perSecond = Math.round((rate.count * 1000) / rate.periodMs)
    const kept = Math.round(keptShare(rate, burst) * perSecond)
    findings.push({
      severity: 'warning',
      path,
      message: `rate ${rate.text} with burst ${burst} passes about ${kept.toLocaleString('en')} a second, not ${perSecond.toLocaleString('en')}: the memory limits store reads the clock in whole milliseconds, and a caller refused within one loses the rest of it; ${enough === null ? 'use the redis store (it counts microseconds)' : `a burst of ${enough} keeps the rate (or use the redis store, which counts microseconds)`}`,
    })
  }
  // Not auth_failures: a bucket kept short there holds a guesser back harder, not less.
  config.limits.forEach((limit, i) => {
    if (limit.rate) check(['limits', i, limit.burst === undefined ? 'rate' : 'burst'], limit.rate, limit.burst)
  })
  return findings
}

/**
 * The share of `rate` the in-process stores pass to a caller who asks without pause, with `burst`:
 * their own arithmetic (limits/bucket.ts takeRate, on the interval limits/route-limits.ts keeps)
 * run over a second of 1 ms ticks, every tick asking until refused. The first tick's burst is left
 * out: what counts is the rate kept after it. 1 for a rate of 50/s or slower: at most a millisecond
 * of each 20 ms interval is lost, under 5%.
 */
export function keptShare(rate: Rate, burst: number): number {
  const exactMs = rate.periodMs / rate.count
  if (exactMs >= 20) return 1
  const interval = binaryInterval(exactMs)
  // The first tick takes the whole burst, each take one interval: its end is computed, not counted
  // out (a burst of 999999999999999 ran that many turns, and the check never ended).
  let tat = burst * interval
  let passed = 0
  for (let now = 1; now <= SIMULATED_MS; now++) {
    for (;;) {
      const from = tat < now ? now : tat
      if (from + interval - burst * interval > now) break
      tat = from + interval
      passed++
    }
  }
  return Math.min(1, passed / (SIMULATED_MS / exactMs))
}

/**
 * The smallest burst above `burst` with which the in-process stores keep `rate` (a larger burst
 * never loses more), or null when none up to the rate's own count does. Searched by halves from a
 * burst that carries a whole millisecond's worth, which keeps it: a config of many limits of
 * 100000/s burst 1 is checked in a few simulations each, not a hundred.
 */
function burstKeeping(rate: Rate, burst: number): number | null {
  const keeps = (candidate: number) => keptShare(rate, candidate) >= KEPT_ENOUGH
  let high = Math.max(burst + 1, Math.ceil(rate.count / rate.periodMs) + 2)
  while (!keeps(high)) {
    if (high >= rate.count) return null
    high = Math.min(rate.count, high * 2)
  }
  let low = burst // does not keep it
  while (high - low > 1) {
    const middle = Math.floor((low + high) / 2)
    if (keeps(middle)) high = middle
    else low = middle
  }
  return high
}
