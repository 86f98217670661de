// The memory limits store of a gateway with several request-path workers (server.workers): one
// table in a SharedArrayBuffer that every worker thread maps, so a principal has one bucket and one
// quota however its connections spread over the workers — not N buckets each allowing the limit.
// The semantics are the memory store's (both read and write entries by entry-rules.ts): GCRA rates
// and windowed quotas, a decayed entry is dropped, a live one never is, and a request that needs a
// new key in a full table is refused.
//
// Layout: an open-addressing hash table (linear probing, backward-shift deletion, so no tombstones)
// of `capacity` slots, a power of two at least twice max_keys. A slot is 128 contiguous bytes (one
// or two cache lines: a lookup touches nothing else): the entry's value, window and expiry, the
// key's hash and length, and the key — its characters as bytes when they are ASCII and fit, else
// 0xFF and the SHA-256 of its UTF-16 code units (no ASCII key starts with 0xFF). Spread over three
// arrays, a decision cost 5-13 µs; in one slot about 2 µs (same loop, same loaded machine).
// The buffer is growable (a growable SharedArrayBuffer reserves its largest size; a page costs
// memory once written), so a reload that raises max_keys grows the table for every worker. The
// table of `capacity` slots lives at slot `capacity - first` of the buffer (`first`: its capacity at
// start), so tables of two capacities never overlap: the one store that finds, under the lock, the
// table smaller than its config wants copies each entry into the bigger table beside it and writes
// the capacity (a header field) last; every store maps the new table at its next take. Until that
// write the old table is whole, so a worker that dies mid-move loses nothing. The price: the old
// table's pages stay written (a SharedArrayBuffer gives none back), 32 MB beside the 256 MB table
// after 100,000 -> 1,000,000 keys, 256 MB beside 1 GB after 1M -> 4M; the places of the capacities
// skipped are reserved, never written. Moved in place, the table had to be copied aside first: every
// worker made its copy, as the supervisor stages a reload in all at once (4 workers, 1M -> 4M: 256
// MB and 2.4-4.2 s of its event loop each), and one that died mid-move lost the entries it had not
// moved (review finding). A lower max_keys only bounds admission (the table keeps its size until
// restart). Fixed at start, a raised max_keys was ignored and a lowered one never bounded anything
// (probe finding).
// One lock (Atomics, a three-state futex mutex) guards the whole table for the length of one take:
// a take is about a microsecond, so workers rarely meet on it, and one lock makes the check-and-take
// of all of a request's limits atomic across workers as it is within one. Its holder's thread id is
// kept beside it: a worker terminated while it holds the lock (the primary's hard stop runs no
// `finally`) would leave every other worker waiting for ever, so the primary releases a dead
// thread's lock (releaseLockOf).
import { hash as digest, randomInt } from 'node:crypto'
import { threadId } from 'node:worker_threads'
import { releaseLock, releaseLockHeldBy, takeLock } from '../../collections/index.ts'
import type { Logger } from '../../telemetry/index.ts'
import { limitsNow } from '../clock.ts'
import type { RateOutcome } from '../bucket.ts'
import type { QuotaOutcome } from '../quota.ts'
import type { Check, LimitsStore, TakeResult } from '../store.ts'
import { cappedTat, expiryOf, FULL_SWEEP_EVERY_MS, fullStoreRefusals, longerWait, outcomeOf, refusedBy, SWEEP_EVERY_MS, valueToStore, windowToStore } from './entry-rules.ts'

const SLOT_BYTES = 128
// Per slot: Float64 [value, window, expiresAt] at bytes 0-23, Int32 [used, hash, key length] at 24-35, the key from 36.
const INTS_AT = 24
const KEY_AT = 36
/** Key bytes kept in a slot; a principal key (`limit|p:8:corp-sso:s:<uuid>`) is about 65. */
const KEY_BYTES = SLOT_BYTES - KEY_AT
const HASHED = 0xff
// The header, before the slots (its own 64 bytes). Int32: the lock, the number of entries, the hash
// seed, refusals for a full table. Float64 (from byte 16): when the next sweep is due, and when the
// next sweep of a full table may run. Int32 at byte 36: the number of slots; at 40, the capacities
// whose table a move has written to (capacities are powers of two: a bit each); at 44, the thread
// (its id + 1) whose store is growing the table, 0 when none.
const HEADER_BYTES = 64
const LOCK = 0
const COUNT = 1
const SEED = 2
const REFUSED = 3
const NEXT_SWEEP = 0
const NEXT_FULL_SWEEP = 1
/** The lock holder's thread id (Int32 at byte 32; 0 when free or held by the main thread). */
const OWNER_AT = 32
const CAPACITY_AT = 36
const WRITTEN_AT = 40
const GROWER_AT = 44
const PAGE_BYTES = 4096
/** The schema's bound on limits_store.max_keys: the most a table grows to (1 GB, and 2 GB of address space reserved for it and the tables before it). */
const MAX_KEYS_BOUND = 4_000_000

/** What the primary makes and hands to every worker (a structured clone shares the memory). */
export interface SharedLimitsTable {
  readonly buffer: SharedArrayBuffer
  /** max_keys at start: a store's bound unless its config names another. */
  readonly maxKeys: number
}

export function createSharedLimitsTable(maxKeys: number): SharedLimitsTable {
  const capacity = capacityFor(maxKeys)
  const buffer = new SharedArrayBuffer(bytesFor(capacity, capacity), { maxByteLength: bytesFor(capacityFor(Math.max(maxKeys, MAX_KEYS_BOUND)), capacity) })
  new Int32Array(buffer, 0, 4)[SEED] = randomInt(2 ** 31)
  new Int32Array(buffer, CAPACITY_AT, 1)[0] = capacity
  return { buffer, maxKeys }
}

/** Where the table of `capacity` slots starts (the first table's at start, `first` slots): a bigger table lies past every smaller one. */
function tableAt(capacity: number, first: number): number {
  return HEADER_BYTES + SLOT_BYTES * (capacity - first)
}

/** The buffer's length that holds the table of `capacity` slots. */
function bytesFor(capacity: number, first: number): number {
  return tableAt(capacity, first) + SLOT_BYTES * capacity
}

function capacityFor(maxKeys: number): number {
  let capacity = 1024
  while (capacity < maxKeys * 2) capacity *= 2
  return capacity
}

/**
 * The lock, released if the thread `thread` held it: the primary calls it once that worker's
 * thread has ended. The holder wrote its id just after taking the lock; a thread ended between the
 * two would still leave it held (a window of a few instructions). A growth of the table it had
 * claimed is given up too: the next take of a store made for it grows the table.
 */
export function releaseLockOf(table: SharedLimitsTable, thread: number): boolean {
  Atomics.compareExchange(new Int32Array(table.buffer, GROWER_AT, 1), 0, thread + 1, 0)
  return releaseLockHeldBy(new Int32Array(table.buffer, 0, 4), LOCK, new Int32Array(table.buffer, OWNER_AT, 1), thread)
}

export interface SharedMemoryStore extends LimitsStore {
  take(checks: readonly Check[]): TakeResult
  readonly size: number
}

/** What a grow moved: the entries, and how long the lock was held for it. */
interface Moved {
  keys: number
  ms: number
}

export interface SharedMemoryStoreOptions {
  /** limits_store.max_keys of this store's config (a reload's): the table grows to hold it. Default: the table's at start. */
  maxKeys?: number
  logger?: Logger
  now?: () => number
}

export function createSharedMemoryStore(table: SharedLimitsTable, options: SharedMemoryStoreOptions = {}): SharedMemoryStore {
  const buffer = table.buffer
  const maxKeys = options.maxKeys ?? table.maxKeys
  const header = new Int32Array(buffer, 0, 4)
  const owner = new Int32Array(buffer, OWNER_AT, 1)
  const headerFloats = new Float64Array(buffer, 16, 2)
  const slots = new Int32Array(buffer, CAPACITY_AT, 1)
  const written = new Int32Array(buffer, WRITTEN_AT, 1)
  const grower = new Int32Array(buffer, GROWER_AT, 1)
  const first = capacityFor(table.maxKeys)
  // Views of the slots (slot i's first float is floats[16 * i], its ints from ints[32 * i + 6], its
  // key from bytes[128 * i + 36]), made again when another store has grown the table (mapSlots).
  let capacity = 0
  let mask = 0
  let floats: Float64Array = new Float64Array(0)
  let ints: Int32Array = new Int32Array(0)
  let bytes: Uint8Array = new Uint8Array(0)
  const seed = header[SEED] as number
  const now = options.now ?? limitsNow
  let scratch = new Uint8Array(KEY_BYTES * 4)
  let scratchWords = new Int32Array(scratch.buffer)
  let keyHash = 0
  const refuse = fullStoreRefusals(maxKeys, options.logger)
  // Refusals before this store (an earlier config's): /readyz reports this store's, as the memory store does.
  const refusedBefore = Atomics.load(header, REFUSED)

  /** Takes the lock, and the table's current slots with it. */
  function lock(): void {
    takeLock(header, LOCK, owner)
    if (slots[0] !== capacity) mapSlots()
  }
  const unlock = () => releaseLock(header, LOCK, owner)

  function mapSlots(): void {
    capacity = slots[0] as number
    mask = capacity - 1
    const at = tableAt(capacity, first)
    floats = new Float64Array(buffer, at, (SLOT_BYTES / 8) * capacity)
    ints = new Int32Array(buffer, at, (SLOT_BYTES / 4) * capacity)
    bytes = new Uint8Array(buffer, at, SLOT_BYTES * capacity)
  }

  /**
   * Grows the buffer to hold the table of `wanted` slots, and writes to each page of that table
   * once, before the lock: those first writes (page faults, ~220 ms for 256 MB on a loaded 2-core
   * VM) were most of what a grow cost, and here no other worker waits for them. The table in use
   * lies before the new one, so the other workers go on taking meanwhile. (An atomic add of 0: a
   * write no compiler drops, that changes nothing.)
   */
  function reserve(): void {
    growBuffer()
    const fresh = new Int32Array(buffer, tableAt(wanted, first), (SLOT_BYTES / 4) * wanted)
    for (let i = 0; i < fresh.length; i += PAGE_BYTES / 4) Atomics.add(fresh, i, 0)
  }

  function growBuffer(): void {
    const length = bytesFor(wanted, first)
    if (buffer.byteLength >= length) return
    try {
      buffer.grow(length)
    } catch (err) {
      // Else another worker grew it meanwhile.
      if (buffer.byteLength < length) throw new Error(`The shared limits table cannot grow to limits_store.max_keys ${maxKeys} (${(err as Error).message}): restart the gateway to apply it.`, { cause: err })
    }
  }

  /**
   * Copies every entry into the table of `wanted` slots, under the lock, then makes it the table
   * (the capacity, written last): a slot keeps its key's hash, so nothing is hashed again, and one
   * native copy moves it (100,000 entries in 25–29 ms, measured). A store that died here (its lock
   * freed by the primary: releaseLockOf) left the old table whole and the new one part-written: the
   * next to move clears that (a native fill, after a crash only) and moves again. Answers what it
   * moved, for the log.
   */
  function moveTo(): Moved {
    const started = performance.now()
    const keys = header[COUNT] as number
    const words = SLOT_BYTES / 4
    const into = new Int32Array(buffer, tableAt(wanted, first), words * wanted)
    if (((written[0] as number) & wanted) !== 0) into.fill(0)
    written[0] = (written[0] as number) | wanted
    const whole = new Uint8Array(buffer, 0, buffer.byteLength)
    const from = tableAt(capacity, first)
    const to = tableAt(wanted, first)
    const intoMask = wanted - 1
    for (let slot = 0; slot < capacity; slot++) {
      const base = slot * words + INTS_AT / 4
      if (ints[base] === 0) continue
      let free = (ints[base + 1] as number) & intoMask
      while (into[free * words + INTS_AT / 4] !== 0) free = (free + 1) & intoMask
      whole.copyWithin(to + free * SLOT_BYTES, from + slot * SLOT_BYTES, from + (slot + 1) * SLOT_BYTES)
    }
    slots[0] = wanted
    mapSlots()
    return { keys, ms: Math.round(performance.now() - started) }
  }

  function logMove(moved: Moved): void {
    options.logger?.info({ store: 'memory', max_keys: maxKeys, slots: wanted, ...moved }, 'the shared limits table grew for every worker: its entries moved')
  }

  /** Whether this store grows the table: the first to find it too small for it, under the lock. */
  function claimGrowth(): boolean {
    lock()
    try {
      if (capacity >= wanted || grower[0] !== 0) return false
      grower[0] = threadId + 1
      return true
    } finally {
      unlock()
    }
  }

  /** The growth this store claimed: its pages without the lock, then the move under it. */
  function grow(): void {
    try {
      reserve()
    } catch (err) {
      Atomics.store(grower, 0, 0)
      throw err
    }
    let moved: Moved | null = null
    lock()
    try {
      if (capacity < wanted) moved = moveTo()
    } finally {
      grower[0] = 0
      unlock()
    }
    if (moved) logMove(moved)
  }

  /**
   * The growth another store claimed and died making (releaseLockOf cleared its claim), under the
   * lock: the new table's pages fault with it held, a cost paid after a crash only. A buffer that
   * cannot grow leaves this store in the table as it is.
   */
  function growLate(): void {
    try {
      growBuffer()
    } catch (err) {
      options.logger?.error({ store: 'memory', max_keys: maxKeys, err }, 'the shared limits table cannot grow: restart the gateway to apply limits_store.max_keys')
      wanted = capacity
      return
    }
    logMove(moveTo())
  }

  // A reload's max_keys above the table's: the one store that finds it so under the lock claims the
  // growth and grows it, for every worker (4 workers, 1M -> 4M keys: 1.0 s for it, 128 ms of it
  // under the lock); the others made meanwhile return at once, admit no more keys than the table
  // holds until it has grown (hasRoom) and map the new one at their next take. A reload staged,
  // then abandoned, leaves the table grown: the stores in use keep their own max_keys.
  let wanted = capacityFor(maxKeys)
  if (claimGrowth()) grow()

  /**
   * Writes the key's stored form at `scratch[at]` and its hash (seeded FNV-1a) to keyHash; answers
   * its length. One pass, no allocation, for an ASCII key that fits.
   */
  function encode(key: string, at: number): number {
    const length = key.length
    let h = (2166136261 ^ seed) | 0
    if (length <= KEY_BYTES) {
      let i = 0
      for (; i < length; i++) {
        const c = key.charCodeAt(i)
        if (c > 0x7f) break
        scratch[at + i] = c
        h = Math.imul(h ^ c, 16777619)
      }
      if (i === length) {
        for (let j = length; (j & 3) !== 0; j++) scratch[at + j] = 0 // compared a word at a time
        keyHash = h
        return length
      }
      h = (2166136261 ^ seed) | 0
    }
    scratch[at] = HASHED
    scratch.set(digest('sha256', Buffer.from(key, 'utf16le'), 'buffer'), at + 1)
    for (let i = at; i < at + 33; i++) h = Math.imul(h ^ (scratch[i] as number), 16777619)
    scratch[at + 33] = 0
    scratch[at + 34] = 0
    scratch[at + 35] = 0
    keyHash = h
    return 33
  }

  /** The slot holding the key, or -(empty slot + 1) where it would go. */
  function find(at: number, length: number, hash: number): number {
    let slot = hash & mask
    for (;;) {
      const base = slot * (SLOT_BYTES / 4) + INTS_AT / 4
      if (ints[base] === 0) return -(slot + 1)
      if (ints[base + 1] === hash && ints[base + 2] === length && sameKey(slot, at, length)) return slot
      slot = (slot + 1) & mask
    }
  }

  /** Four bytes at a time (both sides are zero-padded to a word). */
  function sameKey(slot: number, at: number, length: number): boolean {
    const base = slot * (SLOT_BYTES / 4) + KEY_AT / 4
    const from = at >> 2
    const words = (length + 3) >> 2
    for (let i = 0; i < words; i++) if (ints[base + i] !== scratchWords[from + i]) return false
    return true
  }

  function used(slot: number): boolean {
    return ints[slot * (SLOT_BYTES / 4) + INTS_AT / 4] !== 0
  }

  function insert(slot: number, at: number, length: number, hash: number): void {
    const base = slot * (SLOT_BYTES / 4) + INTS_AT / 4
    ints[base] = 1
    ints[base + 1] = hash
    ints[base + 2] = length
    const key = slot * (SLOT_BYTES / 4) + KEY_AT / 4
    const from = at >> 2
    for (let i = 0; i < (length + 3) >> 2; i++) ints[key + i] = scratchWords[from + i] as number
    header[COUNT] = (header[COUNT] as number) + 1
  }

  function write(slot: number, value: number, window: number, expiresAt: number): void {
    const base = slot * (SLOT_BYTES / 8)
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
      if (!used(next)) break
      const home = (ints[next * (SLOT_BYTES / 4) + INTS_AT / 4 + 1] as number) & mask
      // The entry at `next` may move to the hole unless its home lies cyclically in (hole, next].
      const stays = hole <= next ? home > hole && home <= next : home > hole || home <= next
      if (stays) continue
      bytes.copyWithin(hole * SLOT_BYTES, next * SLOT_BYTES, next * SLOT_BYTES + SLOT_BYTES)
      hole = next
    }
    ints[hole * (SLOT_BYTES / 4) + INTS_AT / 4] = 0
    header[COUNT] = (header[COUNT] as number) - 1
  }

  /** Drops decayed entries (a slot is looked at again after a removal moved another into it). */
  function sweep(at: number): void {
    headerFloats[NEXT_SWEEP] = at + SWEEP_EVERY_MS
    for (let slot = 0; slot < capacity; slot++) {
      while (used(slot) && (floats[slot * (SLOT_BYTES / 8) + 2] as number) <= at) remove(slot)
    }
  }

  function hasRoom(fresh: number, at: number): boolean {
    // Half the table at most: until another store has grown it for this one's max_keys.
    const room = Math.min(maxKeys, capacity / 2)
    if ((header[COUNT] as number) + fresh <= room) return true
    if (at < (headerFloats[NEXT_FULL_SWEEP] as number)) return false
    headerFloats[NEXT_FULL_SWEEP] = at + FULL_SWEEP_EVERY_MS
    sweep(at)
    return (header[COUNT] as number) + fresh <= room
  }

  function refuseFull(index: number, at: number): TakeResult {
    Atomics.add(header, REFUSED, 1)
    return refuse(index, at)
  }

  function take(checks: readonly Check[]): TakeResult {
    const count = checks.length
    if (scratch.length < count * KEY_BYTES) {
      scratch = new Uint8Array(count * KEY_BYTES)
      scratchWords = new Int32Array(scratch.buffer)
    }
    const lengths: number[] = new Array(count)
    const hashes: number[] = new Array(count)
    for (let i = 0; i < count; i++) {
      lengths[i] = encode((checks[i] as Check).key, i * KEY_BYTES)
      hashes[i] = keyHash
    }
    const states: Array<RateOutcome | QuotaOutcome> = new Array(count)
    const next: number[] = new Array(count)
    lock()
    try {
      if (capacity < wanted && grower[0] === 0) growLate()
      const at = now()
      if (at >= (headerFloats[NEXT_SWEEP] as number)) sweep(at)
      let fresh = 0
      let firstFresh = -1
      let refused = -1
      for (let i = 0; i < count; i++) {
        const check = checks[i] as Check
        const slot = find(i * KEY_BYTES, lengths[i] as number, hashes[i] as number)
        const base = slot * (SLOT_BYTES / 8)
        if (slot < 0 && fresh++ === 0) firstFresh = i
        const live = slot >= 0 && (floats[base + 2] as number) > at
        const outcome = outcomeOf(check, live, live ? (floats[base] as number) : 0, live ? (floats[base + 1] as number) : 0, live ? (floats[base + 2] as number) : 0, at)
        if (outcome === null) continue
        states[i] = outcome
        if (!outcome.allowed) {
          const capped = live ? cappedTat(check, outcome, floats[base] as number) : undefined
          if (capped !== undefined) write(slot, capped, 0, expiryOf(check, capped, 0))
          refused = longerWait(states, refused, i)
          continue
        }
        next[i] = valueToStore(check, outcome)
      }
      if (refused !== -1) return refusedBy(checks, refused, states)
      if (fresh > 0 && !hasRoom(fresh, at)) return refuseFull(firstFresh, at)
      for (let i = 0; i < count; i++) {
        const value = next[i]
        if (value === undefined) continue
        // Found again: an earlier check's insert may have taken the empty slot this one saw.
        let slot = find(i * KEY_BYTES, lengths[i] as number, hashes[i] as number)
        if (slot < 0) {
          slot = -slot - 1
          insert(slot, i * KEY_BYTES, lengths[i] as number, hashes[i] as number)
        }
        const check = checks[i] as Check
        const window = windowToStore(check, states[i] as RateOutcome | QuotaOutcome)
        write(slot, value, window, expiryOf(check, value, window))
      }
      return { refused: -1, reason: 'limit', retryAfterMs: 0, states }
    } finally {
      unlock()
    }
  }

  return {
    kind: 'memory',
    budgets: buffer,
    take,
    answeredOnce: () => true,
    status() {
      const refused = Atomics.load(header, REFUSED) - refusedBefore
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
