// Quotas: a count per key over fixed calendar windows in UTC (a minute, an hour, a day). Epoch
// milliseconds are UTC-aligned, so a window starts at a multiple of its length.

export interface QuotaSpec {
  count: number
  periodMs: number
}

export interface QuotaOutcome {
  allowed: boolean
  /** The window this request counts in (part of the stored key). */
  windowStart: number
  /** The count to store when allowed. */
  used: number
  remaining: number
  /** Milliseconds until the window ends. */
  resetMs: number
  retryAfterMs: number
}

export function windowStart(periodMs: number, now: number): number {
  return Math.floor(now / periodMs) * periodMs
}

/**
 * `window`: the window the stored count belongs to when it is a later one than now's (the wall clock
 * stepped back across a boundary): the caller is counted there until it ends. Else now's.
 */
export function takeQuota(spec: QuotaSpec, storedUsed: number | undefined, now: number, window?: number): QuotaOutcome {
  const start = window === undefined ? windowStart(spec.periodMs, now) : window * spec.periodMs
  const resetMs = start + spec.periodMs - now
  const used = storedUsed ?? 0
  if (used >= spec.count) return { allowed: false, windowStart: start, used, remaining: 0, resetMs, retryAfterMs: resetMs }
  return { allowed: true, windowStart: start, used: used + 1, remaining: spec.count - used - 1, resetMs, retryAfterMs: 0 }
}
