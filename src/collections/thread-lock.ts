// A lock between threads on one Int32 cell of a SharedArrayBuffer: 0 free, 1 held, 2 held with
// waiters (Drepper's "Futexes are tricky", mutex 2). Taking a free lock is one compare-and-swap;
// a waiter sleeps in Atomics.wait until the holder's release wakes one. For sections of a few
// microseconds. The holder writes its thread id in `owner` (a one-cell view): a thread that ends
// inside the section (a hard stop, a heap limit runs no `finally`) would leave the lock held and
// every other thread waiting for ever, so whoever sees a thread end releases what it held
// (releaseLockHeldBy). A thread ended between taking the lock and writing its id still leaves it
// held: a window of a few instructions.
import { threadId } from 'node:worker_threads'

export function takeLock(cells: Int32Array, at: number, owner: Int32Array): void {
  let c = Atomics.compareExchange(cells, at, 0, 1)
  if (c !== 0) {
    if (c !== 2) c = Atomics.exchange(cells, at, 2)
    while (c !== 0) {
      Atomics.wait(cells, at, 2)
      c = Atomics.exchange(cells, at, 2)
    }
  }
  owner[0] = threadId
}

export function releaseLock(cells: Int32Array, at: number, owner: Int32Array): void {
  owner[0] = 0
  if (Atomics.sub(cells, at, 1) !== 1) {
    Atomics.store(cells, at, 0)
    Atomics.notify(cells, at, 1)
  }
}

/** Releases the lock if the thread `thread` (which has ended) held it; says whether it did. */
export function releaseLockHeldBy(cells: Int32Array, at: number, owner: Int32Array, thread: number): boolean {
  if (thread === 0 || Atomics.compareExchange(owner, 0, thread, 0) !== thread) return false
  Atomics.store(cells, at, 0)
  Atomics.notify(cells, at)
  return true
}
