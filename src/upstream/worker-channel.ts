// A BroadcastChannel among the process's threads (the workers, the primary), for what one worker
// decides about an upstream and the others apply: health verdicts, ejections.
import { createHash } from 'node:crypto'
import { BroadcastChannel } from 'node:worker_threads'

export interface WorkerChannel<T> {
  post(message: T): void
  close(): void
}

/**
 * The channel named by `topic` and a digest of `scope` (an upstream's name and settings, so a
 * message sent under other settings never reaches it); `receive` gets the others' messages that `accepts`.
 */
export function workerChannel<T>(topic: string, scope: unknown, accepts: (data: unknown) => data is T, receive: ((message: T) => void) | null): WorkerChannel<T> {
  const digest = createHash('sha256').update(JSON.stringify(scope)).digest('base64url')
  const channel = new BroadcastChannel(`bouncer:${topic}:${digest}`)
  channel.unref() // never what holds a worker open
  let open = true
  if (receive !== null) {
    channel.onmessage = (event) => {
      const data = (event as { data: unknown }).data
      if (open && accepts(data)) receive(data)
    }
  }
  return {
    post(message) {
      if (open) channel.postMessage(message)
    },
    close() {
      if (!open) return
      open = false
      channel.close()
    },
  }
}
