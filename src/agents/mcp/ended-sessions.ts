// The MCP session ids their clients DELETEd, for the whole process: one table every worker of
// server.workers reads and writes (a SharedArrayBuffer the primary makes, as it makes the API key
// revocation counters), so a DELETE answered by one worker holds on every worker at its next
// request. Each worker kept its own set before, told of the others' DELETEs by message: a worker
// started after a DELETE (a crashed one's replacement) had never heard of it, and opened the ended
// session again from its sealed id (a probe: 9 of 16 requests served after the replacement).
// SDK-free: the primary makes the table without loading the MCP SDK.
//
// A session is known by 64 bits of its id's random UUID (sessions.ts: only ids the gateway sealed
// are asked about, so a client cannot choose them). The table is set-associative: a bucket of
// WAYS slots per 64-bit value's low bits, each bucket overwriting its oldest slot. Lock-free: a
// slot is one 64-bit atomic store, and two DELETEs in one bucket take two slots (the bucket's
// cursor is an atomic add). It remembers about the newest 100,000 DELETEs (a bucket forgets its
// oldest once 8 newer ones land in it: 1% of ids are gone 100,000 DELETEs later, 2 MB in all): a
// forgotten id opens again for its own owner only, as before a DELETE.

const BUCKETS = 32_768
const WAYS = 8

export interface EndedSessions {
  /** The table every thread of the process opens (server.workers: the primary's). */
  readonly buffer: SharedArrayBuffer
  /** Remembers the DELETE of a session id (a sealed one: sessions.ts). */
  add(id: string): void
  has(id: string): boolean
}

/** The table of a process: made by the primary for its workers, or given its buffer (in a worker), the same one. */
export function endedSessions(buffer: SharedArrayBuffer = new SharedArrayBuffer(BUCKETS * WAYS * 8 + BUCKETS * 4)): EndedSessions {
  const slots = new BigInt64Array(buffer, 0, BUCKETS * WAYS)
  const cursors = new Int32Array(buffer, BUCKETS * WAYS * 8, BUCKETS)
  return {
    buffer,
    add(id) {
      const value = valueOf(id)
      const bucket = bucketOf(value)
      if (inBucket(slots, bucket, value)) return
      const way = (Atomics.add(cursors, bucket, 1) >>> 0) % WAYS
      Atomics.store(slots, bucket * WAYS + way, value)
    },
    has: (id) => {
      const value = valueOf(id)
      return inBucket(slots, bucketOf(value), value)
    },
  }
}

/** 64 random bits of the id's v4 UUID (its last 12 hex digits and first 4), never 0, which marks a free slot. */
function valueOf(id: string): bigint {
  const value = BigInt.asIntN(64, BigInt(`0x${id.slice(24, 36)}${id.slice(0, 4)}`))
  return value === 0n ? 1n : value
}

const bucketOf = (value: bigint) => Number(value & BigInt(BUCKETS - 1))

function inBucket(slots: BigInt64Array, bucket: number, value: bigint): boolean {
  for (let way = 0; way < WAYS; way++) if (Atomics.load(slots, bucket * WAYS + way) === value) return true
  return false
}
