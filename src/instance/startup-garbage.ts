// Loading a config allocates many times its size (the YAML document, the validated copies, the
// compile's scratch): for 10,000 routes the old generation held ~140 MB at start, of which ~35 MB
// live. V8 keeps those pages committed, and under load it never runs the memory-reducing
// collection that would give them back (it waits for the process to go quiet). One such
// collection before listening, while no request can wait on it, measured (bench/README.md,
// "Profiling"): 10,000 routes, idle RSS 353 -> 168 MB and 382 -> 257 MB after 8 s of load; the
// benchmark's 1,000 routes, 174 -> 126 MB idle.
//
// V8 gives JavaScript its collector only behind --expose-gc: set for the moment it takes to make one
// context that has it (a vm context), then unset, so no other context (a function's worker) gets a
// global `gc`.
import { setFlagsFromString } from 'node:v8'
import { runInNewContext } from 'node:vm'

type Collect = (options: { type: 'major'; execution: 'sync'; flavor: 'last-resort' }) => void

let collect: Collect | null | undefined

function collector(): Collect | null {
  try {
    setFlagsFromString('--expose-gc')
    const gc = runInNewContext('gc') as unknown
    return typeof gc === 'function' ? (gc as Collect) : null
  } catch {
    return null // a runtime without it: the memory stays committed, nothing else changes
  } finally {
    setFlagsFromString('--no-expose-gc')
  }
}

/** A full, memory-reducing collection: the start's garbage collected and its pages given back. */
export function releaseStartupGarbage(): void {
  collect ??= collector()
  collect?.({ type: 'major', execution: 'sync', flavor: 'last-resort' })
}
