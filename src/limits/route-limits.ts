// A route's limits, compiled once per config: each limit's rate and quota as separate parts (a
// limit with both keeps two states per key), their key sources, and the RateLimit-Policy value.
import { binaryInterval, type LimitConfig, type Rate } from '../config/index.ts'
import type { RateSpec } from './bucket.ts'
import type { LimitVerdict } from './enforce.ts'
import { policyItem, type StateLabels } from './headers.ts'
import { parseKeySource, type KeySource } from './keys.ts'
import type { QuotaSpec } from './quota.ts'

export interface LimitPart {
  limit: string
  /** `name|` for a rate, `name#q|` for a quota: a limit with both keeps two states per key. */
  keyPrefix: string
  /** The policy's name in the RateLimit headers (`name`, or `name/rate` and `name/quota`). */
  label: string
  source: KeySource
  rate: RateSpec | null
  quota: QuotaSpec | null
  /** The rate or quota in the config's own unit, for a refusal's detail: `5 requests per hour`. */
  rateText: string
  /** What restores the part in full, as configured (RateLimit-Policy's w): a rate's burst × period / count, a quota's period. */
  windowMs: number
  /** RateLimit t's reading of a reset in the configured rate's intervals (headers.ts, StateLabels). */
  resetScale: number
}

export interface RouteLimits extends StateLabels {
  readonly names: readonly string[]
  readonly parts: readonly LimitPart[]
  readonly policyHeader: string
  /** The verdict when the store did not answer and on_error is allow: nothing counted, only the policy sent (made once: enforce.ts). */
  readonly uncounted: LimitVerdict
}

/**
 * A configured rate as the stores keep it: its interval in a binary fraction of a millisecond for
 * the in-process stores, and in whole microseconds for Redis, each rounded once from period / count.
 * The config bounds a rate to what both hold to within 5% (config/values.ts, MAX_RATE_PER_SECOND).
 */
export function rateSpec(rate: Rate, burst: number): RateSpec {
  const exactMs = rate.periodMs / rate.count
  return { intervalMs: binaryInterval(exactMs), intervalUs: Math.max(1, Math.round(exactMs * 1000)), burst }
}

/**
 * A reset in the stores' intervals, read in the configured one's: the configured interval over the
 * longer of the two stores keep (the memory stores' or Redis's), so that a reset the rounding made a
 * hair long (B × 166.667 µs for 6/s) reads as the configured burst × period / count. A millionth of
 * a millionth less again, so float arithmetic's last bit does not round a whole second up. Where
 * the stores keep the interval exactly (1/s, 10/s), 1.
 */
function resetScale(rate: Rate, spec: RateSpec): number {
  const exactMs = rate.periodMs / rate.count
  const keptMs = Math.max(spec.intervalMs, (spec.intervalUs ?? 0) / 1000)
  return keptMs > exactMs ? (exactMs / keptMs) * (1 - 1e-12) : 1
}

/**
 * In the config's own unit: a 429 once said a limit of 5/h "allows 0 requests/s" (the rate
 * converted to per second and rounded to two places: anything under 1/200 s read as 0; probe).
 */
function rateText(rate: Rate): string {
  return `${rate.count} request${rate.count === 1 ? '' : 's'} per ${rate.per}`
}

export function compileRouteLimits(names: readonly string[], limits: readonly LimitConfig[]): RouteLimits | null {
  if (names.length === 0) return null
  const parts: LimitPart[] = []
  for (const name of names) {
    const config = limits.find((l) => l.name === name) as LimitConfig
    const source = parseKeySource(config.key, config.ip_prefix_v6)
    const both = config.rate !== undefined && config.quota !== undefined
    if (config.rate) {
      const rate = rateSpec(config.rate, config.burst ?? config.rate.count)
      const windowMs = (rate.burst * config.rate.periodMs) / config.rate.count
      parts.push({ limit: name, keyPrefix: `${name}|`, label: both ? `${name}/rate` : name, source, rate, quota: null, rateText: rateText(config.rate), windowMs, resetScale: resetScale(config.rate, rate) })
    }
    if (config.quota) {
      const quota = { count: config.quota.count, periodMs: config.quota.periodMs }
      parts.push({ limit: name, keyPrefix: `${name}#q|`, label: both ? `${name}/quota` : name, source, rate: null, quota, rateText: rateText(config.quota), windowMs: quota.periodMs, resetScale: 1 })
    }
  }
  const policyHeader = parts.map((p) => policyItem(p.label, p.rate ? p.rate.burst : (p.quota as QuotaSpec).count, p.windowMs)).join(', ')
  return Object.freeze({
    names,
    parts,
    labels: parts.map((p) => p.label),
    resetScales: parts.map((p) => p.resetScale),
    policyHeader,
    uncounted: Object.freeze({ policy: policyHeader, state: null, limit: null, error: null }),
  })
}
