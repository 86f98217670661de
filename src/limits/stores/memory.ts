// The in-process limits store: a Map of key → stored state, bounded however many distinct keys
// arrive. Entries are updated in place and a quota's window is part of the entry, not of the key,
// so a request costs one Map lookup per limit and no string building (bench/limits.ts).
//
// Bounded without ever forgetting live state. An entry whose state has decayed to "fresh" (a bucket
// refilled to its burst, a quota whose window has passed) carries no information and is dropped:
// by a sweep every 10 s, and at once (at most once a second) when a new key finds the store full.
// A live entry is never dropped: dropping the oldest one, as this store once did, let a flood of
// new keys (header values, or addresses from an IPv6 /64) reset a principal's spent daily quota.
// When the store is still full, a request that needs a new key is refused (503 limits_unavailable,
// counted and logged) rather than counted in some shared overflow budget: refusing never widens
// anyone's budget, while an overflow bucket would be drained by the same flood and answer the
// callers it strands with a misleading 429. Existing keys keep working throughout.
import type { Logger } from '../../telemetry/index.ts'
import { takeRate } from '../bucket.ts'
import { takeQuota } from '../quota.ts'
import type { Check, CheckState, LimitsStore, TakeResult } from '../store.ts'

interface Entry {
  value: number
  /** For quotas: the window index the count belongs to. */
  window: number
  /** After this the entry is equivalent to no entry at all. */
  expiresAt: number
}

const SWEEP_EVERY_MS = 10_000
/** A sweep of 100,000 live entries takes 2–12 ms (measured): once a second bounds what a flood costs. */
const FULL_SWEEP_EVERY_MS = 1_000
const FULL_LOG_EVERY_MS = 10_000

export interface MemoryStore extends LimitsStore {
  /** Synchronous: no I/O, so the request path does not wait on a promise for it. */
  take(checks: readonly Check[]): TakeResult
  readonly size: number
  /** Requests refused because the store had no room for their new key. */
  readonly refusedFull: number
}

export interface MemoryStoreOptions {
  maxKeys: number
  now?: () => number
  /** Where "store full" is reported (at most every 10 s). */
  logger?: Logger
}

export function createMemoryStore(options: MemoryStoreOptions): MemoryStore {
  const entries = new Map<string, Entry>()
  const now = options.now ?? Date.now
  let nextSweep = now() + SWEEP_EVERY_MS
  let nextFullSweep = 0
  let refusedFull = 0
  let refusedSinceLog = 0
  let nextFullLog = 0

  /** Drops keys whose state has decayed to fresh. */
  function sweep(at: number): void {
    nextSweep = at + SWEEP_EVERY_MS
    for (const [key, entry] of entries) if (entry.expiresAt <= at) entries.delete(key)
  }

  /** Whether `fresh` more keys fit, after dropping decayed entries if that is due. */
  function hasRoom(fresh: number, at: number): boolean {
    if (entries.size + fresh <= options.maxKeys) return true
    if (at < nextFullSweep) return false
    nextFullSweep = at + FULL_SWEEP_EVERY_MS
    sweep(at)
    return entries.size + fresh <= options.maxKeys
  }

  function refuseFull(index: number, at: number): TakeResult {
    refusedFull++
    refusedSinceLog++
    if (options.logger && at >= nextFullLog) {
      nextFullLog = at + FULL_LOG_EVERY_MS
      options.logger.warn(
        { store: 'memory', max_keys: options.maxKeys, refused: refusedSinceLog },
        'limits store full of live limits: refusing requests that need a new key (raise limits_store.max_keys)',
      )
      refusedSinceLog = 0
    }
    return { refused: index, reason: 'full', retryAfterMs: FULL_SWEEP_EVERY_MS, states: [] }
  }

  function commit(key: string, entry: Entry | undefined, value: number, window: number, expiresAt: number): void {
    if (entry) {
      entry.value = value
      entry.window = window
      entry.expiresAt = expiresAt
      return
    }
    entries.set(key, { value, window, expiresAt })
  }

  return {
    kind: 'memory',
    take(checks: readonly Check[]): TakeResult {
      const at = now()
      if (at >= nextSweep) sweep(at)
      const count = checks.length
      const states: CheckState[] = new Array(count)
      const found: Array<Entry | undefined> = new Array(count)
      const next: number[] = new Array(count)
      let fresh = 0
      let firstFresh = -1
      for (let i = 0; i < count; i++) {
        const check = checks[i] as Check
        const entry = entries.get(check.key)
        const live = entry !== undefined && entry.expiresAt > at ? entry : undefined
        found[i] = entry
        if (entry === undefined && fresh++ === 0) firstFresh = i
        if (check.rate) {
          const outcome = takeRate(check.rate, live?.value, at)
          states[i] = outcome
          if (!outcome.allowed) return { refused: i, reason: 'limit', retryAfterMs: outcome.retryAfterMs, states: states.slice(0, i + 1) }
          next[i] = outcome.tat
        } else if (check.quota) {
          const window = Math.floor(at / check.quota.periodMs)
          const outcome = takeQuota(check.quota, live !== undefined && live.window === window ? live.value : undefined, at)
          states[i] = outcome
          if (!outcome.allowed) return { refused: i, reason: 'limit', retryAfterMs: outcome.retryAfterMs, states: states.slice(0, i + 1) }
          next[i] = outcome.used
        }
      }
      if (fresh > 0 && !hasRoom(fresh, at)) return refuseFull(firstFresh, at)
      for (let i = 0; i < count; i++) {
        const check = checks[i] as Check
        if (check.rate) commit(check.key, found[i], next[i] as number, 0, next[i] as number)
        else if (check.quota) {
          const window = Math.floor(at / check.quota.periodMs)
          commit(check.key, found[i], next[i] as number, window, (window + 1) * check.quota.periodMs)
        }
      }
      return { refused: -1, reason: 'limit', retryAfterMs: 0, states }
    },
    status: () => (refusedFull === 0 ? `memory: ${entries.size} keys` : `memory: ${entries.size} keys (max_keys reached: ${refusedFull} requests refused for a new key)`),
    get size() {
      return entries.size
    },
    get refusedFull() {
      return refusedFull
    },
    async close() {
      entries.clear()
    },
  }
}
