// What the two in-process stores agree on (memory.ts, a Map; shared-memory.ts, a table every
// request-path worker maps): how a check reads its key's stored entry, what it stores when the
// request is allowed, and how a store full of live entries says so. They differ only in where an
// entry lives; one definition here keeps a principal's budget the same whichever of them holds it.
import type { Logger } from '../../telemetry/index.ts'
import { takeRate, type RateOutcome } from '../bucket.ts'
import { takeQuota, type QuotaOutcome } from '../quota.ts'
import type { Check, CheckState, TakeResult } from '../store.ts'

/** A decayed entry is dropped by a sweep this often. */
export const SWEEP_EVERY_MS = 10_000
/** A sweep of 100,000 live entries takes 2–12 ms (measured): once a second bounds what a flood costs. */
export const FULL_SWEEP_EVERY_MS = 1_000
const FULL_LOG_EVERY_MS = 10_000

/**
 * Check `check` against its entry: `live` when the key has an entry that has not yet decayed,
 * `value`, `window` and `expiresAt` what it holds (a rate's TAT; a quota's count, the window it
 * counts in and that window's end). Null for a check that limits nothing.
 */
export function outcomeOf(check: Check, live: boolean, value: number, window: number, expiresAt: number, at: number): RateOutcome | QuotaOutcome | null {
  if (check.rate) return takeRate(check.rate, live ? value : undefined, at)
  if (check.quota) {
    const current = quotaWindowOf(check.quota.periodMs, at)
    // A count kept under another period (a reload that changed `/h` to `/d`) is a window index of
    // that period: an hour's index read as a day's lies 1,300 years ahead, and the caller was counted
    // there (probe finding). Its window's end (expiryOf) says which period it was counted under; a
    // changed window counts afresh (README).
    if (!live || window < current || expiresAt !== expiryOf(check, value, window)) return takeQuota(check.quota, undefined, at)
    // A count kept for a later window than now's: the wall clock stepped back across a boundary (an
    // NTP step). It stands until that window ends; read as no count, it was overwritten, and a spent
    // daily quota was whole again before midnight and once more after it (probe finding).
    return takeQuota(check.quota, value, at, window > current ? window : undefined)
  }
  return null
}

/** The value an allowed check stores: the rate's new TAT, or the quota's new count. */
export function valueToStore(check: Check, outcome: RateOutcome | QuotaOutcome): number {
  return check.rate ? (outcome as RateOutcome).tat : (outcome as QuotaOutcome).used
}

/**
 * For a refused check: the TAT its entry holds from now on when takeRate capped the stored one at an
 * empty bucket (bucket.ts: a raised rate, a clock stepped back), else undefined. Stored back, the
 * cap stays put; left to slide with the clock, it kept the caller refused for the old debt all the
 * same. Not a charge: the stored state only forgets what the cap says it never held.
 */
export function cappedTat(check: Check, outcome: RateOutcome | QuotaOutcome, stored: number): number | undefined {
  return check.rate && (outcome as RateOutcome).tat < stored ? (outcome as RateOutcome).tat : undefined
}

/** The window an entry's count belongs to, the one takeQuota counted it in (0 for a rate: its TAT is absolute). */
export function windowToStore(check: Check, outcome: RateOutcome | QuotaOutcome): number {
  return !check.rate && check.quota ? (outcome as QuotaOutcome).windowStart / check.quota.periodMs : 0
}

/** When the stored entry will have decayed to no entry at all: a rate's TAT, the end of a quota's window (windowToStore's). */
export function expiryOf(check: Check, value: number, window: number): number {
  return !check.rate && check.quota ? (window + 1) * check.quota.periodMs : value
}

function quotaWindowOf(periodMs: number, at: number): number {
  return Math.floor(at / periodMs)
}

/**
 * The longer wait of a refusal so far (`refused`, -1 for none) and check `index`'s, which refuses:
 * a 429 waits for the limit that frees last, so every check is read, not only up to the first
 * that refuses (probe finding: Retry-After 1 for a rate, then 52 s more for the quota beside it).
 * The first of equal waits.
 */
export function longerWait(outcomes: ReadonlyArray<RateOutcome | QuotaOutcome>, refused: number, index: number): number {
  return refused === -1 || (outcomes[index] as RateOutcome | QuotaOutcome).retryAfterMs > (outcomes[refused] as RateOutcome | QuotaOutcome).retryAfterMs ? index : refused
}

/**
 * The answer when check `index` refused (the one with the longest wait: longerWait), with every
 * check's state. Nothing is charged (all or nothing), so the checks that would have allowed report
 * what remains before this request, not after it: a 429 once told a caller one less than was left,
 * and left out the limits after the first refusal (probe findings).
 */
export function refusedBy(checks: readonly Check[], index: number, outcomes: ReadonlyArray<RateOutcome | QuotaOutcome>): TakeResult {
  const reported: CheckState[] = new Array(checks.length)
  for (let i = 0; i < checks.length; i++) {
    const outcome = outcomes[i]
    if (outcome === undefined) continue // a check that limits nothing
    if (!outcome.allowed) {
      reported[i] = outcome
      continue
    }
    // Undo the take: a rate's moved its TAT one interval on, a quota's counted one in this window.
    const rate = (checks[i] as Check).rate
    reported[i] = { remaining: outcome.remaining + 1, resetMs: rate ? outcome.resetMs - rate.intervalMs : outcome.resetMs }
  }
  return { refused: index, reason: 'limit', retryAfterMs: (outcomes[index] as RateOutcome | QuotaOutcome).retryAfterMs, states: reported }
}

/**
 * The answer for a request whose new key finds the store full of live entries; logged at most
 * every 10 s, with how many were refused since the last line.
 */
export function fullStoreRefusals(maxKeys: number, logger: Logger | undefined): (index: number, at: number) => TakeResult {
  let nextLog = 0
  let refusedSinceLog = 0
  return (index, at) => {
    refusedSinceLog++
    if (logger && at >= nextLog) {
      nextLog = at + FULL_LOG_EVERY_MS
      logger.warn(
        { store: 'memory', max_keys: maxKeys, refused: refusedSinceLog },
        'limits store full of live limits: refusing requests that need a new key (raise limits_store.max_keys)',
      )
      refusedSinceLog = 0
    }
    return { refused: index, reason: 'full', retryAfterMs: FULL_SWEEP_EVERY_MS, states: [] }
  }
}
