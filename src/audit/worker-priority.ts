// The audit worker's share of a core it shares with the request thread (batched durability only).
// Each batch is ~100 ms of records hashed and inserted in one burst; at the request thread's
// priority CFS splits the core evenly while it runs and the requests in flight wait. Five nice
// levels lower, the worker gets less of a contended core (CFS weight 335 against 1,024 for one
// competing thread) and does its work in the gaps: bench/README.md "Profiling" has the A/B.
//
// A lower priority must never let records pile up unwritten (those waiting in the worker's queue
// count against queue_capacity, but past it they spill, which costs a replay later). So the worker
// yields only while it keeps up. A batch that reaches it late (FALLEN_BEHIND_MS after it was posted) puts it back at
// the request thread's priority until batches arrive fresh again; a drain (shutdown) does too.
// Linux only, where a thread has its own nice value; elsewhere nothing changes.
import { readFileSync, readlinkSync } from 'node:fs'
import { getPriority, setPriority } from 'node:os'

/** How many nice levels below the request thread the worker runs while it keeps up. */
export const YIELD_NICE = 5
/** A batch this late means the worker is behind: it takes the request thread's priority. */
export const FALLEN_BEHIND_MS = 500
/** Batches this fresh again, and it yields once more. */
export const CAUGHT_UP_MS = 150

export interface WorkerPriority {
  /** After each batch: how long it waited between being posted and being taken. */
  observeLag(ms: number): void
  /** Back to the request thread's priority for good (a drain at shutdown). */
  restore(): void
  readonly yielding: boolean
}

/** A thread's nice value as `setNice` sets it (relative to where it started); false when it cannot. */
export type SetNice = (offset: number) => boolean

/** This thread's nice value, set relative to the value it started with (Linux: `setpriority` on its thread id). */
export function ownThreadNice(): SetNice | null {
  let tid: number
  let base: number
  try {
    // The link reads "<pid>/task/<tid>" for the calling thread.
    tid = Number(readlinkSync('/proc/thread-self').split('/').pop())
    if (!Number.isInteger(tid)) return null
    base = getPriority(tid)
  } catch {
    return null // not Linux, or no /proc
  }
  // Back to `base` from base + YIELD_NICE is a raise of priority, which Linux allows only with
  // CAP_SYS_NICE or an RLIMIT_NICE that reaches `base`. Every deployment runs unprivileged (the
  // unit's User=, the image's USER node) with the default limit of 0: the worker lowered itself,
  // could not come back once it fell behind, and kept yielding while records piled up (found by an
  // adversarial probe). Where the way back is closed, it does not yield at all.
  if (!mayRaiseTo(base)) return null
  return (offset) => {
    try {
      setPriority(tid, Math.min(19, base + offset))
      return true
    } catch {
      return false
    }
  }
}

export function workerPriority(setNice: SetNice | null): WorkerPriority {
  let yielding = setNice?.(YIELD_NICE) === true
  let restored = false
  const to = (yes: boolean) => {
    if (restored || yes === yielding || !setNice) return
    if (setNice(yes ? YIELD_NICE : 0)) yielding = yes
  }
  return {
    observeLag(ms) {
      if (yielding && ms >= FALLEN_BEHIND_MS) to(false)
      else if (!yielding && ms <= CAUGHT_UP_MS) to(true)
    },
    restore() {
      to(false)
      restored = true
    },
    get yielding() {
      return yielding
    },
  }
}

const CAP_SYS_NICE = 23n

/** Whether this process may set a thread's nice value back to `nice` (Linux: CAP_SYS_NICE, or RLIMIT_NICE down to it). */
export function mayRaiseTo(nice: number, proc: { status: string; limits: string } | null = ownProc()): boolean {
  if (!proc) return false
  const capabilities = /^CapEff:\s*([0-9a-f]+)$/m.exec(proc.status)?.[1]
  if (capabilities !== undefined && ((BigInt(`0x${capabilities}`) >> CAP_SYS_NICE) & 1n) === 1n) return true
  // "Max nice priority  <soft>  <hard>": the lowest nice value allowed is 20 - soft ("unlimited": any).
  const soft = /^Max nice priority\s+(\S+)/m.exec(proc.limits)?.[1]
  if (soft === 'unlimited') return true
  return soft !== undefined && 20 - Number(soft) <= nice
}

function ownProc(): { status: string; limits: string } | null {
  try {
    return { status: readFileSync('/proc/self/status', 'utf8'), limits: readFileSync('/proc/self/limits', 'utf8') }
  } catch {
    return null
  }
}
