// Loading a config allocates many times its size (the YAML document, the validated copies, the
// compile's scratch): for 10,000 routes the old generation held ~140 MB at start, of which ~35 MB
// live. V8 keeps those pages committed, and under load it never runs the memory-reducing
// collection that would give them back (it waits for the process to go quiet). One such
// collection before listening, while no request can wait on it, measured (bench/README.md,
// "Profiling"): 10,000 routes, idle RSS 353 -> 200 MB and 382 -> 277 MB after 8 s of load; the
// benchmark's 1,000 routes, 174 -> 132 MB idle.
//
// V8 gives JavaScript its collector only behind --expose-gc. bin/bouncer.js sets the flag for the
// moment it takes to make one vm context holding `gc`, before any other thread or context exists,
// and leaves the function here (STARTUP_COLLECTOR); no other context gets a global `gc`. Only a
// process started that way collects, once, on its main thread: not the tests' in-process gateways,
// not server.workers threads (each its own isolate, without the function).
import { isMainThread } from 'node:worker_threads'

/** Where bin/bouncer.js leaves the collector of the main thread's isolate. */
export const STARTUP_COLLECTOR = Symbol.for('bouncer.startupCollector')

type Collect = (options: { type: 'major'; execution: 'sync'; flavor: 'last-resort' }) => void

let collected = false

/** A full, memory-reducing collection, the first time it is asked for in a process started by bin/bouncer.js. */
export function releaseStartupGarbage(): void {
  if (collected || !isMainThread) return
  collected = true
  const collect = (globalThis as Record<symbol, unknown>)[STARTUP_COLLECTOR]
  if (typeof collect === 'function') (collect as Collect)({ type: 'major', execution: 'sync', flavor: 'last-resort' })
}
