// The memory limits store of a gateway with several request-path workers (server.workers): one
// table in a SharedArrayBuffer that every worker thread maps, so a principal has one bucket and one
// quota however its connections spread over the workers — not N buckets each allowing the limit.
// The semantics are the memory store's (memory.ts): GCRA rates and windowed quotas, a decayed entry
// is dropped, a live one never is, and a request that needs a new key in a full table is refused.
//
// Layout: an open-addressing hash table (linear probing, backward-shift deletion, so no tombstones)
// of `capacity` slots, a power of two at least twice max_keys. A slot holds the key's UTF-8 bytes
// (up to KEY_BYTES; a longer key, or one that is not well-formed UTF-16, is stored as 0xFF and its
// SHA-256, which no UTF-8 text starts with), its hash, and the entry's value, window and expiry.
// One lock (Atomics, a three-state futex mutex) guards the whole table for the length of one take:
// a take is about a microsecond, so workers rarely meet on it, and one lock makes the check-and-take
// of all of a request's limits atomic across workers as it is within one.
import { hash as digest, randomInt } from 'node:crypto'
import type { Logger } from '../../telemetry/index.ts'
import { takeRate } from '../bucket.ts'
import { takeQuota } from '../quota.ts'
import type { Check, CheckState, LimitsStore, TakeResult } from '../store.ts'

/** Key bytes kept in a slot; a principal key (`limit|p:6:issuer:s:<uuid>`) is about 60. */
const KEY_BYTES = 96
const HASHED = 0xff
// Int32 header: the lock, the number of entries, the hash seed, refusals for a full table.
const LOCK = 0
const COUNT = 1
const SEED = 2
const REFUSED = 3
const HEADER_INTS = 4
// Float64 header: when the next sweep is due, and when the next sweep of a full table may run.
const NEXT_SWEEP = 0
const NEXT_FULL_SWEEP = 1
const HEADER_FLOATS = 2
// Per slot: Int32 [used, hash, key length], Float64 [value, window, expiresAt].
const INTS = 3
const FLOATS = 3

const SWEEP_EVERY_MS = 10_000
const FULL_SWEEP_EVERY_MS = 1_000
const FULL_LOG_EVERY_MS = 10_000

/** What the primary makes and hands to every worker (a structured clone shares the memory). */
export interface SharedLimitsTable {
  readonly buffer: SharedArrayBuffer
  readonly maxKeys: number
}

export function createSharedLimitsTable(maxKeys: number): SharedLimitsTable {
  const capacity = capacityFor(maxKeys)
  const bytes = 8 * HEADER_FLOATS + 8 * FLOATS * capacity + 4 * HEADER_INTS + 4 * INTS * capacity + KEY_BYTES * capacity
  const buffer = new SharedArrayBuffer(bytes)
  new Int32Array(buffer, 8 * HEADER_FLOATS + 8 * FLOATS * capacity, HEADER_INTS)[SEED] = randomInt(2 ** 31)
  return { buffer, maxKeys }
}

function capacityFor(maxKeys: number): number {
  let capacity = 1024
  while (capacity < maxKeys * 2) capacity *= 2
  return capacity
}

export interface SharedMemoryStore extends LimitsStore {
  take(checks: readonly Check[]): TakeResult
  readonly size: number
}

export function createSharedMemoryStore(table: SharedLimitsTable, options: { logger?: Logger; now?: () => number } = {}): SharedMemoryStore {
  const { buffer, maxKeys } = table
  const capacity = capacityFor(maxKeys)
  const mask = capacity - 1
  const floats = new Float64Array(buffer, 0, HEADER_FLOATS + FLOATS * capacity)
  const intsAt = 8 * HEADER_FLOATS + 8 * FLOATS * capacity
  const header = new Int32Array(buffer, intsAt, HEADER_INTS)
  const ints = new Int32Array(buffer, intsAt + 4 * HEADER_INTS, INTS * capacity)
  const keys = new Uint8Array(buffer, intsAt + 4 * HEADER_INTS + 4 * INTS * capacity, KEY_BYTES * capacity)
  const seed = header[SEED] as number
  const now = options.now ?? Date.now
  const encoder = new TextEncoder()
  let scratch = new Uint8Array(KEY_BYTES * 4)
  let nextFullLog = 0
  let refusedSinceLog = 0

  function lock(): void {
    let c = Atomics.compareExchange(header, LOCK, 0, 1)
    if (c === 0) return
    if (c !== 2) c = Atomics.exchange(header, LOCK, 2)
    while (c !== 0) {
      Atomics.wait(header, LOCK, 2)
      c = Atomics.exchange(header, LOCK, 2)
    }
  }

  function unlock(): void {
    if (Atomics.sub(header, LOCK, 1) !== 1) {
      Atomics.store(header, LOCK, 0)
      Atomics.notify(header, LOCK, 1)
    }
  }

  /** Writes the key's stored form at `scratch[at]`; its length. */
  function encode(key: string, at: number): number {
    if (key.length <= KEY_BYTES && key.isWellFormed()) {
      const { read, written } = encoder.encodeInto(key, scratch.subarray(at, at + KEY_BYTES))
      if (read === key.length) return written
    }
    scratch[at] = HASHED
    scratch.set(digest('sha256', Buffer.from(key, 'utf16le'), 'buffer'), at + 1)
    return 33
  }

  function hashOf(at: number, length: number): number {
    let h = (2166136261 ^ seed) >>> 0
    for (let i = at; i < at + length; i++) h = Math.imul(h ^ (scratch[i] as number), 16777619)
    return h | 0
  }

  /** The slot holding the key, or -(empty slot + 1) where it would go. */
  function find(at: number, length: number, hash: number): number {
    let slot = hash & mask
    for (;;) {
      const base = slot * INTS
      if (ints[base] === 0) return -(slot + 1)
      if (ints[base + 1] === hash && ints[base + 2] === length && sameKey(slot, at, length)) return slot
      slot = (slot + 1) & mask
    }
  }

  function sameKey(slot: number, at: number, length: number): boolean {
    const base = slot * KEY_BYTES
    for (let i = 0; i < length; i++) if (keys[base + i] !== scratch[at + i]) return false
    return true
  }

  function insert(slot: number, at: number, length: number, hash: number): void {
    const base = slot * INTS
    ints[base] = 1
    ints[base + 1] = hash
    ints[base + 2] = length
    keys.set(scratch.subarray(at, at + length), slot * KEY_BYTES)
    header[COUNT] = (header[COUNT] as number) + 1
  }

  function write(slot: number, value: number, window: number, expiresAt: number): void {
    const base = HEADER_FLOATS + slot * FLOATS
    floats[base] = value
    floats[base + 1] = window
    floats[base + 2] = expiresAt
  }

  /** Empties a slot and moves later entries of its probe run back (no tombstones). */
  function remove(slot: number): void {
    let hole = slot
    let next = slot
    for (;;) {
      next = (next + 1) & mask
      if (ints[next * INTS] === 0) break
      const home = (ints[next * INTS + 1] as number) & mask
      // The entry at `next` may move to the hole unless its home lies cyclically in (hole, next].
      const stays = hole <= next ? home > hole && home <= next : home > hole || home <= next
      if (stays) continue
      ints.copyWithin(hole * INTS, next * INTS, next * INTS + INTS)
      floats.copyWithin(HEADER_FLOATS + hole * FLOATS, HEADER_FLOATS + next * FLOATS, HEADER_FLOATS + next * FLOATS + FLOATS)
      keys.copyWithin(hole * KEY_BYTES, next * KEY_BYTES, next * KEY_BYTES + KEY_BYTES)
      hole = next
    }
    ints[hole * INTS] = 0
    header[COUNT] = (header[COUNT] as number) - 1
  }

  /** Drops decayed entries (a slot is looked at again after a removal moved another into it). */
  function sweep(at: number): void {
    floats[NEXT_SWEEP] = at + SWEEP_EVERY_MS
    for (let slot = 0; slot < capacity; slot++) {
      while (ints[slot * INTS] === 1 && (floats[HEADER_FLOATS + slot * FLOATS + 2] as number) <= at) remove(slot)
    }
  }

  function hasRoom(fresh: number, at: number): boolean {
    if ((header[COUNT] as number) + fresh <= maxKeys) return true
    if (at < (floats[NEXT_FULL_SWEEP] as number)) return false
    floats[NEXT_FULL_SWEEP] = at + FULL_SWEEP_EVERY_MS
    sweep(at)
    return (header[COUNT] as number) + fresh <= maxKeys
  }

  function refuseFull(index: number, at: number): TakeResult {
    Atomics.add(header, REFUSED, 1)
    refusedSinceLog++
    if (options.logger && at >= nextFullLog) {
      nextFullLog = at + FULL_LOG_EVERY_MS
      options.logger.warn(
        { store: 'memory', max_keys: maxKeys, refused: refusedSinceLog },
        'limits store full of live limits: refusing requests that need a new key (raise limits_store.max_keys)',
      )
      refusedSinceLog = 0
    }
    return { refused: index, reason: 'full', retryAfterMs: FULL_SWEEP_EVERY_MS, states: [] }
  }

  function take(checks: readonly Check[]): TakeResult {
    const count = checks.length
    if (scratch.length < count * KEY_BYTES) scratch = new Uint8Array(count * KEY_BYTES)
    const lengths: number[] = new Array(count)
    const hashes: number[] = new Array(count)
    for (let i = 0; i < count; i++) {
      const length = encode((checks[i] as Check).key, i * KEY_BYTES)
      lengths[i] = length
      hashes[i] = hashOf(i * KEY_BYTES, length)
    }
    const states: CheckState[] = new Array(count)
    const next: number[] = new Array(count)
    lock()
    try {
      const at = now()
      if (at >= (floats[NEXT_SWEEP] as number)) sweep(at)
      let fresh = 0
      let firstFresh = -1
      for (let i = 0; i < count; i++) {
        const check = checks[i] as Check
        const slot = find(i * KEY_BYTES, lengths[i] as number, hashes[i] as number)
        const base = HEADER_FLOATS + slot * FLOATS
        const live = slot >= 0 && (floats[base + 2] as number) > at
        if (slot < 0 && fresh++ === 0) firstFresh = i
        if (check.rate) {
          const outcome = takeRate(check.rate, live ? floats[base] : undefined, at)
          states[i] = outcome
          if (!outcome.allowed) return { refused: i, reason: 'limit', retryAfterMs: outcome.retryAfterMs, states: states.slice(0, i + 1) }
          next[i] = outcome.tat
        } else if (check.quota) {
          const window = Math.floor(at / check.quota.periodMs)
          const outcome = takeQuota(check.quota, live && floats[base + 1] === window ? floats[base] : undefined, at)
          states[i] = outcome
          if (!outcome.allowed) return { refused: i, reason: 'limit', retryAfterMs: outcome.retryAfterMs, states: states.slice(0, i + 1) }
          next[i] = outcome.used
        }
      }
      if (fresh > 0 && !hasRoom(fresh, at)) return refuseFull(firstFresh, at)
      for (let i = 0; i < count; i++) {
        const check = checks[i] as Check
        if (!check.rate && !check.quota) continue
        // Found again: an earlier check's insert may have taken the empty slot this one saw.
        let slot = find(i * KEY_BYTES, lengths[i] as number, hashes[i] as number)
        if (slot < 0) {
          slot = -slot - 1
          insert(slot, i * KEY_BYTES, lengths[i] as number, hashes[i] as number)
        }
        if (check.rate) write(slot, next[i] as number, 0, next[i] as number)
        else if (check.quota) {
          const window = Math.floor(at / check.quota.periodMs)
          write(slot, next[i] as number, window, (window + 1) * check.quota.periodMs)
        }
      }
      return { refused: -1, reason: 'limit', retryAfterMs: 0, states }
    } finally {
      unlock()
    }
  }

  return {
    kind: 'memory',
    take,
    status() {
      const refused = Atomics.load(header, REFUSED)
      const size = Atomics.load(header, COUNT)
      return refused === 0 ? `memory (shared by the workers): ${size} keys` : `memory (shared by the workers): ${size} keys (max_keys reached: ${refused} requests refused for a new key)`
    },
    get size() {
      return Atomics.load(header, COUNT)
    },
    // The table outlives this worker's store: the other workers and a restarted worker use it.
    async close() {},
  }
}
