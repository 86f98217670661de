// The spill files' cap (audit.spill_max_bytes). A sink away for hours filled a node's disk with
// spill (a probe); at the cap the gateway either refuses requests it could not record
// (`on_spill_full: refuse`, the default) or keeps serving and counts the records it loses (`drop`).
//
// Under `refuse` the request thread stops answering once the files hold the cap, but the answers
// already given and the refusals themselves still have records on their way: the files take a
// tenth more for those (8 MiB at least: config/spill-room.ts), and only past that is a record dropped. Sizes are read from the files
// (one stat per spill file and append, at batch rate), so a replay that empties a file frees its
// room without any bookkeeping here.
import type { Spill } from './spill.ts'

export type OnSpillFull = 'refuse' | 'drop'

/** A batch the spill files had no room for: its records are dropped and counted. */
export class SpillFull extends Error {
  readonly maxBytes: number
  /** The batch's first records, written before the room ran out: only the rest is dropped. */
  readonly written: number
  constructor(maxBytes: number, written = 0) {
    super(`the audit spill files hold audit.spill_max_bytes (${maxBytes} bytes)`)
    this.name = 'SpillFull'
    this.maxBytes = maxBytes
    this.written = written
  }
}

export interface SpillBudget {
  readonly maxBytes: number
  /** Bytes in the spill files now. */
  used(): number
  /**
   * How many of these lines (their sizes in bytes, in order) the files have room for: all, or the
   * first ones that fit (a batch bigger than the room left dropped whole, the spill empty beside it).
   * `reserved`: bytes already let through and not yet written (appends are queued).
   */
  claim(lineBytes: readonly number[], reserved?: number): number
  /** The files hold the cap or more (`now`: what they hold, when just read). */
  full(now?: number): boolean
}

/**
 * `spills`: the files that count (the worker's own sinks'; files adopted from an earlier run only
 * shrink). `headroom`: what they may hold past the cap (config's spillHeadroom: refuseHeadroom under refuse, 0 under
 * drop), reckoned on the request thread, which has the config module loaded.
 */
export function spillBudget(maxBytes: number, headroom: number, spills: () => readonly Spill[]): SpillBudget {
  const limit = maxBytes + headroom
  const used = () => {
    let sum = 0
    for (const spill of spills()) sum += spill.size()
    return sum
  }
  // What the files held when a batch last did not fit: full until they hold less (a replay), even
  // below the cap, which a batch that did not fit may never have let them reach, and though a
  // smaller batch may fit after it.
  let refusedAt: number | null = null
  return {
    maxBytes,
    used,
    claim(lineBytes, reserved = 0) {
      const now = used()
      let room = limit - now - reserved
      let fit = 0
      for (; fit < lineBytes.length && (lineBytes[fit] as number) <= room; fit++) room -= lineBytes[fit] as number
      if (fit < lineBytes.length) refusedAt = now
      return fit
    },
    full(now = used()) {
      if (refusedAt !== null && (now < refusedAt || now === 0)) refusedAt = null
      return now >= maxBytes || refusedAt !== null
    },
  }
}
