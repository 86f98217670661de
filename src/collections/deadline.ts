// A deadline on work that cannot be withdrawn once sent: a Redis command still runs when Redis
// reaches it, after the caller has given up on it. The caller answers at the deadline, and the
// late result goes to `late`, which undoes what the work did (a limit taken).

export class DeadlineExceeded extends Error {}

/**
 * The work's result, or a DeadlineExceeded rejection once `ms` have passed; a result that arrives
 * after that goes to `late` instead (a failure after it goes nowhere: the caller already has one).
 */
export function withinDeadline<T>(work: Promise<T>, ms: number, what: string, late: (result: T) => void): Promise<T> {
  return new Promise((resolve, reject) => {
    let gaveUp = false
    const timer = setTimeout(() => {
      gaveUp = true
      reject(new DeadlineExceeded(`${what} did not answer within ${ms} ms`))
    }, ms)
    work.then(
      (result) => {
        if (gaveUp) return late(result)
        clearTimeout(timer)
        resolve(result)
      },
      (err: unknown) => {
        clearTimeout(timer)
        reject(err)
      },
    )
  })
}
