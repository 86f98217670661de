// IETF RateLimit headers (draft-ietf-httpapi-ratelimit-headers), structured-field lists:
//   RateLimit-Policy: "per-principal";q=20;w=2, "daily-quota";q=10000;w=86400
//   RateLimit: "per-principal";r=19;t=1, "daily-quota";r=9941;t=43199
// q: the quota (a rate's burst), w: the window in seconds it is restored over, r: what remains,
// t: seconds until it is restored in full.
import type { CheckState } from './store.ts'

/**
 * The largest RFC 8941 integer (15 digits). A huge burst on a slow rate (999999999999999 at 1/d)
 * restores over more seconds than that, and JS would print 8.64e+19: w and t are clamped to it
 * (probe finding). q and r are at most the burst, which the config bounds to it already.
 */
const MAX_SF_INTEGER = 999_999_999_999_999

/**
 * `windowMs`: what restores `q` in full, as configured — a quota's period, or a rate's burst ×
 * period / count. Not the stores' interval, rounded to a 1/1024 ms (route-limits.ts): a hair long,
 * it said 6/s was q=6;w=2 and 7/m w=61 (probe finding).
 */
export function policyItem(label: string, q: number, windowMs: number): string {
  return `"${label}";q=${q};w=${Math.min(MAX_SF_INTEGER, Math.max(1, Math.ceil(windowMs / 1000)))}`
}

/** A route's limit parts as RateLimit names them, and how each reads a reset (route-limits.ts, RouteLimits). */
export interface StateLabels {
  readonly labels: readonly string[]
  /**
   * Per part, what turns a reset measured in the stores' rounded intervals into one in the
   * configured rate's (1 for a quota, and for a rate whose interval the stores keep exactly).
   * Rounded up as it stood, a bucket 6/s spent at once restored in 1000.002 ms and said t=2 beside
   * its policy's w=1 (7/m: t=61, 13/h: t=3601; probe finding).
   */
  readonly resetScales: readonly number[]
}

export function stateHeader(limits: StateLabels, states: readonly CheckState[]): string {
  let out = ''
  for (let i = 0; i < states.length; i++) {
    const state = states[i] as CheckState
    if (i > 0) out += ', '
    const t = Math.ceil((state.resetMs * (limits.resetScales[i] as number)) / 1000)
    out += `"${limits.labels[i] as string}";r=${state.remaining};t=${t > MAX_SF_INTEGER ? MAX_SF_INTEGER : t}`
  }
  return out
}
