// What a limits store does: check-and-take for all of a request's limits at once. All or nothing:
// when one limit refuses, none is charged, and the first to refuse is named.
import type { RateSpec } from './bucket.ts'
import type { QuotaSpec } from './quota.ts'

export interface Check {
  key: string
  rate: RateSpec | null
  quota: QuotaSpec | null
}

export interface CheckState {
  remaining: number
  resetMs: number
}

export interface TakeResult {
  /** Index of the first check that refused, or -1. */
  refused: number
  retryAfterMs: number
  /** One per check, in order (when refused, the states up to and including the refusing one). */
  states: CheckState[]
}

export interface LimitsStore {
  readonly kind: 'memory' | 'redis'
  take(checks: readonly Check[]): TakeResult | Promise<TakeResult>
  /** For /readyz and logs. */
  status(): string
  close(): Promise<void>
}
