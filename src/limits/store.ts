// What a limits store does: check-and-take for all of a request's limits at once. All or nothing:
// when one limit refuses, none is charged, and the exhausted one with the longest wait is named.
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
  /** Index of the check that refused with the longest wait (the first of equal ones), or -1. */
  refused: number
  /**
   * Why: its limit is spent (`limit`), or (memory store) the store is full of live state and has no
   * room for that check's new key (`full`, with no states: nothing was counted).
   */
  reason: 'limit' | 'full'
  retryAfterMs: number
  /** One per check, in order, refused or not (a refusal charges none: they stand as before it). */
  states: CheckState[]
}

/** An instance's limits as it enforces them: each limit's name → its key, rate, burst and quota in words (agreement.ts). */
export type LimitsDescription = Readonly<Record<string, string>>

export interface LimitsStore {
  readonly kind: 'memory' | 'redis'
  take(checks: readonly Check[]): TakeResult | Promise<TakeResult>
  /**
   * What the budgets are kept in, when stores share them: a memory store a reload made for a new
   * max_keys counts in its predecessor's entries (store-registry.ts), and answers the same object.
   */
  readonly budgets?: object
  /** For /readyz and logs. */
  status(): string
  /** Whether the store has answered at least once (one that needs no connection: always). */
  answeredOnce(): boolean
  /**
   * Resolves once a store that connects (Redis) has connected or failed to, bounded: a reload swaps
   * its runtime in after it, not while every limited request would meet `on_error`.
   */
  settled?(): Promise<void>
  /**
   * A store several instances share (Redis): publishes this instance's limits under `instance`,
   * kept `ttlMs`, and answers those the other instances published within it (agreement.ts).
   */
  shareLimits?(instance: string, limits: LimitsDescription, ttlMs: number): Promise<Map<string, LimitsDescription>>
  /** Takes this instance's published limits back (a stop): the others no longer compare with them. */
  withdrawLimits?(instance: string): Promise<void>
  close(): Promise<void>
}
