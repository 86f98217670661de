// Threads the gateway ended with terminate() that did not end. terminate() stops JavaScript, not a
// system call: a function's handler reading a hung network file system (or a named pipe nobody
// writes) holds its worker thread for good, and terminate()'s promise never settles. A pool that
// awaited it closed never, and Node's exit waits to join every thread, so a SIGTERM drained the
// gateway and then the process hung. Such threads are listed here once they have had a grace, and
// `bouncer serve` ends the process without them (SIGKILL, with a warning) when any is.
import type { Worker } from 'node:worker_threads'

/** How long a thread told to stop may take before it is counted held. */
export const HELD_THREAD_GRACE_MS = 1_000

const held = new Set<string>()
const terminating = new Set<Promise<boolean>>()

/**
 * Stops a worker thread. Resolves true once it has ended, or false once the grace has passed without
 * it (then it is listed by heldThreads() until it ends after all). Never rejects.
 */
export function terminateThread(worker: Worker, name: string): Promise<boolean> {
  const label = `${name} (thread ${worker.threadId})`
  const stopping = new Promise<boolean>((resolve) => {
    const timer = setTimeout(() => {
      held.add(label)
      resolve(false)
    }, HELD_THREAD_GRACE_MS)
    const ended = () => {
      clearTimeout(timer)
      held.delete(label)
      resolve(true)
    }
    worker.once('exit', ended)
    worker.terminate().then(ended, ended)
  })
  terminating.add(stopping)
  void stopping.then(() => terminating.delete(stopping))
  return stopping
}

/**
 * The threads told to stop that have not ended (held in a system call), once every stop under way
 * has ended or had its grace: a thread stopped just before the drain (a function's timeout) counts.
 */
export async function heldThreads(): Promise<string[]> {
  await Promise.all(terminating)
  return [...held]
}
