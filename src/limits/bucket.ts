// Rate limits as GCRA (the generic cell rate algorithm, a token bucket kept as one number): each
// key stores its theoretical arrival time (TAT). A fresh key absorbs `burst` requests at once, then
// one per emission interval. Pure: the clock is an argument, so the arithmetic is tested exactly.

export interface RateSpec {
  /** Milliseconds between requests at the sustained rate (period / count), as the in-process stores keep it (route-limits.ts, binaryInterval). */
  intervalMs: number
  /**
   * The same interval in whole microseconds, the Redis store's unit, rounded from the configured
   * period / count (route-limits.ts, rateSpec). Rounded from intervalMs instead, it was rounded
   * twice: 97,000/s ran 7% slow. From intervalMs when absent (a spec made by hand).
   */
  intervalUs?: number
  burst: number
}

export interface RateOutcome {
  allowed: boolean
  /** The new TAT to store when allowed; when refused, the TAT as read (capped: see takeRate). */
  tat: number
  /** Requests still allowed right now after this one. */
  remaining: number
  /** Milliseconds until the bucket is full again (RateLimit `t`). */
  resetMs: number
  /** When refused: milliseconds until one request would be allowed (Retry-After). */
  retryAfterMs: number
}

export function takeRate(spec: RateSpec, storedTat: number | undefined, now: number): RateOutcome {
  // A TAT is never legitimately more than burst × interval ahead (an empty bucket). One further
  // ahead was stored under a slower rate (a reload that raised it), or before the wall clock stepped
  // back: capped, the caller is held to this rate's empty bucket, not to the old debt (probe finding:
  // 429 with Retry-After 3600 after raising 1/h to 100/s). A full bucket stays full, a spent one spent.
  // The stores write a capped TAT back (entry-rules.ts, cappedTat), so the cap does not slide.
  const tat = storedTat === undefined || storedTat < now ? now : Math.min(storedTat, now + spec.burst * spec.intervalMs)
  const next = tat + spec.intervalMs
  const allowAt = next - spec.burst * spec.intervalMs
  if (allowAt > now) {
    return { allowed: false, tat, remaining: 0, resetMs: tat - now, retryAfterMs: allowAt - now }
  }
  return {
    allowed: true,
    tat: next,
    remaining: Math.floor((now - allowAt) / spec.intervalMs),
    resetMs: next - now,
    retryAfterMs: 0,
  }
}
