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
import { limitsNow } from '../clock.ts'
import type { RateOutcome } from '../bucket.ts'
import type { QuotaOutcome } from '../quota.ts'
import type { Check, LimitsStore, TakeResult } from '../store.ts'
import { cappedTat, expiryOf, FULL_SWEEP_EVERY_MS, fullStoreRefusals, longerWait, outcomeOf, refusedBy, SWEEP_EVERY_MS, valueToStore, windowToStore } from './entry-rules.ts'

export interface MemoryEntry {
  value: number
  /** For quotas: the window index the count belongs to. */
  window: number
  /** After this the entry is equivalent to no entry at all. */
  expiresAt: number
}

export interface MemoryStore extends LimitsStore {
  /** Synchronous: no I/O, so the request path does not wait on a promise for it. */
  take(checks: readonly Check[]): TakeResult
  readonly size: number
  /** Requests refused because the store had no room for their new key. */
  readonly refusedFull: number
}

/** What a memory store holds: one per store, or handed from store to store (store-registry.ts). */
export type MemoryEntries = Map<string, MemoryEntry>

export interface MemoryStoreOptions {
  maxKeys: number
  /**
   * Entries shared with the other memory stores of a registry (store-registry.ts), so a reload that
   * changes max_keys keeps every bucket: the store counts in them and leaves clearing them to their
   * owner. When they hold more than max_keys, no live entry is dropped: new keys wait until decayed
   * ones are swept, as in any full store.
   */
  entries?: MemoryEntries
  now?: () => number
  /** Where "store full" is reported (at most every 10 s). */
  logger?: Logger
}

export function createMemoryStore(options: MemoryStoreOptions): MemoryStore {
  const entries: MemoryEntries = options.entries ?? new Map()
  const now = options.now ?? limitsNow
  let nextSweep = now() + SWEEP_EVERY_MS
  let nextFullSweep = 0
  let refusedFull = 0
  const refuse = fullStoreRefusals(options.maxKeys, options.logger)

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
    return refuse(index, at)
  }

  function commit(key: string, entry: MemoryEntry | undefined, value: number, window: number, expiresAt: number): void {
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
    budgets: entries,
    take(checks: readonly Check[]): TakeResult {
      const at = now()
      if (at >= nextSweep) sweep(at)
      const count = checks.length
      const states: Array<RateOutcome | QuotaOutcome> = new Array(count)
      const found: Array<MemoryEntry | undefined> = new Array(count)
      const next: number[] = new Array(count)
      let fresh = 0
      let firstFresh = -1
      let refused = -1
      for (let i = 0; i < count; i++) {
        const check = checks[i] as Check
        const entry = entries.get(check.key)
        found[i] = entry
        if (entry === undefined && fresh++ === 0) firstFresh = i
        const outcome = outcomeOf(check, entry !== undefined && entry.expiresAt > at, entry?.value ?? 0, entry?.window ?? 0, entry?.expiresAt ?? 0, at)
        if (outcome === null) continue
        states[i] = outcome
        if (!outcome.allowed) {
          const capped = entry === undefined ? undefined : cappedTat(check, outcome, entry.value)
          if (capped !== undefined) commit(check.key, entry, capped, 0, expiryOf(check, capped, 0))
          refused = longerWait(states, refused, i)
          continue
        }
        next[i] = valueToStore(check, outcome)
      }
      if (refused !== -1) return refusedBy(checks, refused, states)
      if (fresh > 0 && !hasRoom(fresh, at)) return refuseFull(firstFresh, at)
      for (let i = 0; i < count; i++) {
        const check = checks[i] as Check
        const value = next[i]
        if (value === undefined) continue
        const window = windowToStore(check, states[i] as RateOutcome | QuotaOutcome)
        commit(check.key, found[i], value, window, expiryOf(check, value, window))
      }
      return { refused: -1, reason: 'limit', retryAfterMs: 0, states }
    },
    answeredOnce: () => true,
    status: () => (refusedFull === 0 ? `memory: ${entries.size} keys` : `memory: ${entries.size} keys (max_keys reached: ${refusedFull} requests refused for a new key)`),
    get size() {
      return entries.size
    },
    get refusedFull() {
      return refusedFull
    },
    async close() {
      if (!options.entries) entries.clear()
    },
  }
}
