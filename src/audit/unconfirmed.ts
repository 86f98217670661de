// The batches an audit worker numbered and then ended without confirming (a crash, its heap limit):
// they may be in every sink already. Failed blindly, a `durability: sync` client got 503 for a
// request whose record says it was served, and the dropped count named records that were stored.
// They wait for the replacement worker instead, which reads what every sink holds when it starts
// (its `ready`): a batch whose last record is there is committed; the rest are lost, as before.

/** A waiting sync response hears whether its record was committed (true) or lost (false). */
export type Waiter = (committed: boolean) => void

export interface InFlightBatch {
  count: number
  waiters: Waiter[]
  /** Its last record's seq once the worker has numbered it; null when the worker dropped it unnumbered. */
  last?: number | null
}

/** How a group of held batches ended: records stored, records lost, and what decided it. */
export interface Settled {
  stored: number
  lost: number
  by: 'replacement' | 'timeout' | 'no replacement'
}

export interface UnconfirmedBatches {
  /** Records held, neither confirmed nor lost yet. */
  readonly records: number
  /** Takes a dead worker's in-flight batches: those it never numbered are lost at once (returned: their record count), the rest are held. */
  hold(batches: Iterable<InFlightBatch>): number
  /** `stored`: the replacement's newest record every sink holds (null: nothing is confirmed). */
  settle(stored: number | null, by: Settled['by']): void
}

/**
 * `timeoutMs` bounds the wait: a replacement that has not read its sinks by then (they hang) leaves
 * the held batches lost, as they were before this wait existed, and their responses go.
 */
export function unconfirmedBatches(timeoutMs: number, settled: (outcome: Settled) => void): UnconfirmedBatches {
  let held: InFlightBatch[] = []
  let records = 0
  let timer: NodeJS.Timeout | undefined

  function settle(stored: number | null, by: Settled['by']): void {
    clearTimeout(timer)
    timer = undefined
    if (held.length === 0) return
    const batches = held
    held = []
    records = 0
    const outcome: Settled = { stored: 0, lost: 0, by }
    for (const batch of batches) {
      const committed = stored !== null && typeof batch.last === 'number' && batch.last <= stored
      if (committed) outcome.stored += batch.count
      else outcome.lost += batch.count
      for (const wake of batch.waiters) wake(committed)
    }
    settled(outcome)
  }

  return {
    get records() {
      return records
    },
    hold(batches) {
      let lost = 0
      for (const batch of batches) {
        if (typeof batch.last === 'number') {
          held.push(batch)
          records += batch.count
          continue
        }
        lost += batch.count
        for (const wake of batch.waiters) wake(false)
      }
      if (held.length > 0 && timer === undefined) timer = setTimeout(() => settle(null, 'timeout'), timeoutMs).unref()
      return lost
    },
    settle,
  }
}
