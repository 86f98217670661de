// The request path's LRU (src/collections/lru.ts, a linked list through its nodes) against a Map
// kept in recency order by delete-and-set on every hit (what the token cache used to be), on the
// shapes the gateway sees: hits on a working set of tokens, and a cold token on every request (a
// miss, a set and an eviction).
//
//   node bench/lru.ts
import { fileURLToPath } from 'node:url'
import { createLru, type Lru } from '../src/collections/index.ts'

/** The previous token cache: recency kept by the Map's insertion order. */
function createMapLru<V>(maxEntries: number): Lru<V> {
  const entries = new Map<string, { value: V; expiresAt: number }>()
  return {
    get(key, now) {
      const entry = entries.get(key)
      if (entry === undefined) return undefined
      if (entry.expiresAt <= now) {
        entries.delete(key)
        return undefined
      }
      entries.delete(key)
      entries.set(key, entry)
      return entry.value
    },
    set(key, value, expiresAt) {
      if (maxEntries === 0) return
      entries.delete(key)
      entries.set(key, { value, expiresAt })
      if (entries.size > maxEntries) entries.delete(entries.keys().next().value as string)
    },
    delete: (key) => void entries.delete(key),
    clear: () => entries.clear(),
    get size() {
      return entries.size
    },
  }
}

export interface LruRow {
  workload: string
  linkedNs: number
  mapNs: number
}

// Tokens are ~800 characters. They are made before the clock starts: what is timed is the cache.
const token = (i: number) => `eyJ${'x'.repeat(780)}.${i.toString(36)}`

function time(operations: number, run: () => void): number {
  run() // warm-up
  const started = performance.now()
  run()
  return ((performance.now() - started) * 1e6) / operations
}

function hits(make: (max: number) => Lru<number>, n: number): number {
  const cache = make(10_000)
  const keys = Array.from({ length: 1_000 }, (_, i) => token(i))
  for (const key of keys) cache.set(key, 1, Number.POSITIVE_INFINITY)
  return time(n, () => {
    for (let i = 0; i < n; i++) cache.get(keys[i % 1_000] as string, 0)
  })
}

/** Twice through `keys` (warm-up, then timed), every one new to the cache when it comes. */
function misses(make: (max: number) => Lru<number>, keys: readonly string[]): number {
  const cache = make(10_000)
  let next = 0
  return time(keys.length / 2, () => {
    for (let i = 0; i < keys.length / 2; i++) {
      const key = keys[next++] as string
      if (cache.get(key, 0) === undefined) cache.set(key, 1, Number.POSITIVE_INFINITY)
    }
  })
}

export function benchLru(quick: boolean): LruRow[] {
  const n = quick ? 100_000 : 1_000_000
  const fresh = Array.from({ length: quick ? 40_000 : 200_000 }, (_, i) => token(i))
  return [
    { workload: 'hit (1,000 tokens in a 10,000-entry cache)', linkedNs: hits(createLru, n), mapNs: hits(createMapLru, n) },
    { workload: 'miss + set + evict (a new token per request)', linkedNs: misses(createLru, fresh), mapNs: misses(createMapLru, fresh) },
  ]
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  for (const row of benchLru(process.argv.includes('--quick'))) {
    console.log(`${row.workload}: linked list ${row.linkedNs.toFixed(0)} ns, Map delete+set ${row.mapNs.toFixed(0)} ns`)
  }
}
