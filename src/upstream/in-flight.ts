// An upstream's requests in flight, counted for the whole gateway: max_concurrent is the ceiling on
// what reaches the upstream from everyone together (README "Upstream protection").
//
// One process counts in a plain number. With server.workers each worker thread counted its own, so
// `max_concurrent: 2` let 2 per worker through (a probe: 4 at once with two workers). The workers
// now count in one table the primary makes (a SharedArrayBuffer, as the API key revocation
// counters): per upstream name, the gateway's count in one cell, taken with one Atomics.add and
// given back at once when it was already at the ceiling (no lock), and beside it each worker's own
// share, which only that worker writes. A worker that ends without finishing its requests (an
// uncaught exception no handler saw, its heap limit, a hard stop) leaves its share in the count:
// the primary, once the thread has ended, takes the share out (releaseWorkerInFlight) before its
// replacement takes the same column. The count and the share are updated one after the other with
// no call between them, count first on the way in and share first on the way out, so a thread
// stopped between the two (terminate() stops JavaScript at a function's entry or a loop's back
// edge) can only leave the count one higher than the shares, a place held for good, never the
// ceiling loosened. A sum of per-worker cells would be exact but costs a load per worker at
// every request: measured 7 ns a load on this VM, 60 ns a request with 2 workers, 350 ns with 16,
// 2 µs with 256 (against 20-25 ns for this, whatever the workers).
//
// An upstream without max_concurrent counts in the worker alone: nothing is shared, nothing is
// contended. A reload that gives it a ceiling counts from the requests that come after.
//
// Counts go by upstream name, not by the Upstream object: a reload that changes an upstream's
// settings makes a new object, and the requests the old one still has in flight count against the
// new one's ceiling (they were forgotten, in one process too).

import { createHash } from 'node:crypto'

/** Names the workers' table holds: ones never seen before beyond it count per worker (logged). */
const NAMES = 4_096

/**
 * An upstream's count of requests in flight, in this process or for all its workers. `max` is the
 * ceiling of the Upstream that counts (a reload may change it): the same on the way in and out.
 */
export interface InFlight {
  /** Takes a place if fewer than `max` are in flight; false (nothing taken) if not. */
  enter(max: number): boolean
  leave(max: number): void
  /** Whether `max` or more are in flight now. */
  full(max: number): boolean
  /** How many are in flight now: the gateway's under a ceiling, and this thread's others. */
  count(): number
}

/** What an upstream registry draws counts from: the same InFlight for a name across reloads. */
export interface InFlightCounts {
  acquire(name: string): InFlight
  /**
   * An upstream of that name closed: this thread forgets its count once no live one uses it (the
   * workers' table keeps the name's slot: a name seen once is likely seen again, after a reload).
   */
  release(name: string): void
}

/** The workers' table: the primary makes it and gives each worker its buffer and its column (w1 is 0). */
export interface SharedInFlight {
  readonly buffer: SharedArrayBuffer
  readonly column: number
}

/** Made by the primary before any worker starts: names, the gateway's counts, and a column of shares per worker. */
export function workersInFlightTable(workers: number): SharedArrayBuffer {
  return new SharedArrayBuffer(NAMES * BigInt64Array.BYTES_PER_ELEMENT + NAMES * (1 + workers) * Int32Array.BYTES_PER_ELEMENT)
}

/**
 * The primary, once a worker's thread has ended: its requests in flight ended with it, and their
 * places are given back. Answers how many (what would otherwise have been taken from the
 * upstreams' ceilings for good).
 */
export function releaseWorkerInFlight(buffer: SharedArrayBuffer, column: number): number {
  const { totals, shares } = cellsOf(buffer)
  let held = 0
  for (let slot = 0; slot < NAMES; slot++) {
    const share = Atomics.exchange(shares, column * NAMES + slot, 0)
    if (share === 0) continue
    Atomics.sub(totals, slot, share)
    held += share
  }
  return held
}

/** Counts of this process (`shared` absent) or of the workers' table, as this worker's column. */
export function inFlightCounts(shared?: SharedInFlight, tableFull: (name: string) => void = () => {}): InFlightCounts {
  const live = new Map<string, { count: InFlight; users: number }>()
  const names = shared ? new BigInt64Array(shared.buffer, 0, NAMES) : null
  const cells = shared ? cellsOf(shared.buffer) : null
  const create = (name: string): InFlight => {
    if (!shared || !names || !cells) return new LocalInFlight()
    const slot = slotOf(names, name)
    if (slot !== null) return new WorkersInFlight(cells.totals, slot, cells.shares, shared.column * NAMES + slot)
    tableFull(name)
    return new LocalInFlight()
  }
  return {
    acquire(name) {
      let entry = live.get(name)
      if (!entry) live.set(name, (entry = { count: create(name), users: 0 }))
      entry.users++
      return entry.count
    },
    release(name) {
      const entry = live.get(name)
      if (entry && --entry.users === 0) live.delete(name)
    },
  }
}

class LocalInFlight implements InFlight {
  #count = 0
  enter(max: number): boolean {
    if (this.#count >= max) return false
    this.#count++
    return true
  }
  leave(): void {
    this.#count--
  }
  full(max: number): boolean {
    return this.#count >= max
  }
  count(): number {
    return this.#count
  }
}

class WorkersInFlight implements InFlight {
  readonly #totals: Int32Array
  readonly #slot: number
  readonly #shares: Int32Array
  readonly #share: number
  /** Requests under no ceiling: this worker's alone. */
  #unbounded = 0
  /** This worker's share, which only it writes: its cell is a copy the primary reads once the thread has ended. */
  #held = 0
  constructor(totals: Int32Array, slot: number, shares: Int32Array, share: number) {
    this.#totals = totals
    this.#slot = slot
    this.#shares = shares
    this.#share = share
  }
  enter(max: number): boolean {
    if (max === Number.POSITIVE_INFINITY) {
      this.#unbounded++
      return true
    }
    if (Atomics.add(this.#totals, this.#slot, 1) >= max) {
      Atomics.sub(this.#totals, this.#slot, 1)
      return false
    }
    this.#shares[this.#share] = ++this.#held
    return true
  }
  leave(max: number): void {
    if (max === Number.POSITIVE_INFINITY) {
      this.#unbounded--
      return
    }
    this.#shares[this.#share] = --this.#held
    Atomics.sub(this.#totals, this.#slot, 1)
  }
  full(max: number): boolean {
    return max !== Number.POSITIVE_INFINITY && Atomics.load(this.#totals, this.#slot) >= max
  }
  count(): number {
    return Atomics.load(this.#totals, this.#slot) + this.#unbounded
  }
}

function cellsOf(buffer: SharedArrayBuffer): { totals: Int32Array; shares: Int32Array } {
  const start = NAMES * BigInt64Array.BYTES_PER_ELEMENT
  return { totals: new Int32Array(buffer, start, NAMES), shares: new Int32Array(buffer, start + NAMES * Int32Array.BYTES_PER_ELEMENT) }
}

/**
 * The name's slot in the table, claimed if no worker has: open addressing on 64 bits of the name's
 * hash (0 marks a free slot), a claim one compare-and-exchange. Null when the table is full.
 */
function slotOf(names: BigInt64Array, name: string): number | null {
  const key = keyOf(name)
  const start = Number(BigInt.asUintN(32, key) % BigInt(NAMES))
  for (let i = 0; i < NAMES; i++) {
    const slot = (start + i) % NAMES
    const held = Atomics.load(names, slot)
    if (held === key) return slot
    if (held === 0n) {
      const before = Atomics.compareExchange(names, slot, 0n, key)
      if (before === 0n || before === key) return slot
    }
  }
  return null
}

/** 64 bits of the name's SHA-256, never 0: two names of one config never share a count. */
function keyOf(name: string): bigint {
  const key = createHash('sha256').update(name).digest().readBigInt64LE(0)
  return key === 0n ? 1n : key
}
