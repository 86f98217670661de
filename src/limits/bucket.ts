// Rate limits as GCRA (the generic cell rate algorithm, a token bucket kept as one number): each
// key stores its theoretical arrival time (TAT). A fresh key absorbs `burst` requests at once, then
// one per emission interval. Pure: the clock is an argument, so the arithmetic is tested exactly.

export interface RateSpec {
  /** Milliseconds between requests at the sustained rate (period / count). */
  intervalMs: number
  burst: number
}

export interface RateOutcome {
  allowed: boolean
  /** The new TAT to store when allowed. */
  tat: number
  /** Requests still allowed right now after this one. */
  remaining: number
  /** Milliseconds until the bucket is full again (RateLimit `t`). */
  resetMs: number
  /** When refused: milliseconds until one request would be allowed (Retry-After). */
  retryAfterMs: number
}

export function takeRate(spec: RateSpec, storedTat: number | undefined, now: number): RateOutcome {
  const tat = storedTat === undefined || storedTat < now ? now : storedTat
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
