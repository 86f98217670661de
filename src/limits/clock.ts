// The in-process limits stores' clock: epoch milliseconds with their fraction. Date.now counts whole
// milliseconds, and a caller refused within one lost the rest of it: 5000/s with burst 1 passed
// 1,000 a second (probe finding). The fraction comes from performance.now (monotonic, sub-µs); the
// wall clock stays the reference, so a step of it (NTP, a test's fake Date) moves this clock too
// and quota windows stay on UTC's boundaries. Per thread; the workers share one timeOrigin, so
// their readings of the shared table's entries agree to within a millisecond even after a step.

/** epoch ms = offset + performance.now(), while that stays within a millisecond or so of Date.now. */
let offset = performance.timeOrigin

/** This thread's last reading: a rebase does not put the clock back by less than a step (below). */
let last = 0

export function limitsNow(): number {
  const wall = Date.now()
  const fine = offset + performance.now()
  // Date.now is the reading floored: fine - wall lies in [0, 1), in (-0.5, 1.5) after a rebase.
  const now = fine > wall - 1 && fine < wall + 2 ? fine : rebase()
  // A rebase knows the wall clock's phase to within 1.5 ms, so it could put the clock back that
  // much (NTP slewing the wall clock against performance.now brings one every few seconds): a
  // limit saw time reverse, and the second take of a burst of 2 was refused (found in CI). A step
  // back of more than that is the wall clock's own, and is followed.
  if (now < last && last - now < 2) return last
  last = now
  return now
}

/**
 * The wall clock has stepped, or this thread was descheduled between the two readings: read again.
 * The offset is timeOrigin's while that agrees with the wall clock (the workers then read the shared
 * table on one clock), else the one that puts performance.now within half a millisecond of it.
 * Rare: off the hot path.
 */
function rebase(): number {
  for (let tries = 0; ; tries++) {
    const before = performance.now()
    const wall = Date.now()
    const after = performance.now()
    if (after - before < 0.1 || tries === 3) {
      const origin = performance.timeOrigin + before
      offset = origin > wall - 0.2 && origin < wall + 1 ? performance.timeOrigin : wall + 0.5 - (before + after) / 2
      return offset + after
    }
  }
}
