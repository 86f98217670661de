// The in-process limits store: a Map of key → stored state, bounded however many distinct keys
// arrive. Idle keys are swept once their state has decayed to "fresh"; past max_keys the oldest key
// is dropped (which can only make that key's caller luckier, never locked out). Entries are
// updated in place and a quota's window is part of the entry, not of the key, so a request costs
// one Map lookup per limit and no string building (bench/limits.ts).
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

export interface MemoryStore extends LimitsStore {
  /** Synchronous: no I/O, so the request path does not wait on a promise for it. */
  take(checks: readonly Check[]): TakeResult
  readonly size: number
}

export function createMemoryStore(options: { maxKeys: number; now?: () => number }): MemoryStore {
  const entries = new Map<string, Entry>()
  const now = options.now ?? Date.now
  let nextSweep = now() + SWEEP_EVERY_MS

  /** Drops keys whose state has decayed to fresh; runs on the store's own clock, every 10 s. */
  function sweep(at: number): void {
    nextSweep = at + SWEEP_EVERY_MS
    for (const [key, entry] of entries) if (entry.expiresAt <= at) entries.delete(key)
  }

  function commit(key: string, entry: Entry | undefined, value: number, window: number, expiresAt: number): void {
    if (entry) {
      entry.value = value
      entry.window = window
      entry.expiresAt = expiresAt
      return
    }
    entries.set(key, { value, window, expiresAt })
    if (entries.size > options.maxKeys) entries.delete(entries.keys().next().value as string)
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
      for (let i = 0; i < count; i++) {
        const check = checks[i] as Check
        const entry = entries.get(check.key)
        const live = entry !== undefined && entry.expiresAt > at ? entry : undefined
        found[i] = entry
        if (check.rate) {
          const outcome = takeRate(check.rate, live?.value, at)
          states[i] = outcome
          if (!outcome.allowed) return { refused: i, retryAfterMs: outcome.retryAfterMs, states: states.slice(0, i + 1) }
          next[i] = outcome.tat
        } else if (check.quota) {
          const window = Math.floor(at / check.quota.periodMs)
          const outcome = takeQuota(check.quota, live !== undefined && live.window === window ? live.value : undefined, at)
          states[i] = outcome
          if (!outcome.allowed) return { refused: i, retryAfterMs: outcome.retryAfterMs, states: states.slice(0, i + 1) }
          next[i] = outcome.used
        }
      }
      for (let i = 0; i < count; i++) {
        const check = checks[i] as Check
        if (check.rate) commit(check.key, found[i], next[i] as number, 0, next[i] as number)
        else if (check.quota) {
          const window = Math.floor(at / check.quota.periodMs)
          commit(check.key, found[i], next[i] as number, window, (window + 1) * check.quota.periodMs)
        }
      }
      return { refused: -1, retryAfterMs: 0, states }
    },
    status: () => `memory: ${entries.size} keys`,
    get size() {
      return entries.size
    },
    async close() {
      entries.clear()
    },
  }
}
