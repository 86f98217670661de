// A lock between threads on one Int32 cell of a SharedArrayBuffer: 0 free, 1 held, 2 held with
// waiters (Drepper's "Futexes are tricky", mutex 2). Taking a free lock is one compare-and-swap;
// a waiter sleeps in Atomics.wait until the holder's release wakes one. For sections of a few
// microseconds: a thread ended while holding it leaves it held (the limits table's primary
// releases it for a worker it saw end).
export function takeLock(cells: Int32Array, at: number): void {
  let c = Atomics.compareExchange(cells, at, 0, 1)
  if (c === 0) return
  if (c !== 2) c = Atomics.exchange(cells, at, 2)
  while (c !== 0) {
    Atomics.wait(cells, at, 2)
    c = Atomics.exchange(cells, at, 2)
  }
}

export function releaseLock(cells: Int32Array, at: number): void {
  if (Atomics.sub(cells, at, 1) !== 1) {
    Atomics.store(cells, at, 0)
    Atomics.notify(cells, at, 1)
  }
}
