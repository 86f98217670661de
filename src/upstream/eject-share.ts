// server.workers: passive ejection (`eject.after` consecutive failures) is counted by each worker
// on its own requests, but the verdict is the gateway's: the worker that ejects a target tells the
// others, which take it out for the same `eject.for`. Before, each other worker went on sending the
// failing target its own `after` tries (an item of stop 39's notes). One message per ejection, none
// per request: the counts stay each worker's.
import { createHash } from 'node:crypto'
import { BroadcastChannel } from 'node:worker_threads'

export interface EjectionShare {
  /** This worker ejected the target at `url`: the others follow. */
  post(url: string): void
  close(): void
}

/**
 * The channel of one upstream's ejections, named by its whole config, so an upstream a reload
 * changed (its targets, its `eject`) never hears the other's. `apply` gets the other workers' ejections.
 */
export function shareEjections(upstreamConfig: unknown, apply: (url: string) => void): EjectionShare {
  const digest = createHash('sha256').update(JSON.stringify(upstreamConfig)).digest('base64url')
  const channel = new BroadcastChannel(`bouncer:upstream-ejections:${digest}`)
  channel.unref() // never what holds a worker open
  let open = true
  channel.onmessage = (event) => {
    const url = (event as { data: unknown }).data
    if (open && typeof url === 'string') apply(url)
  }
  return {
    post(url) {
      if (open) channel.postMessage(url)
    },
    close() {
      if (!open) return
      open = false
      channel.close()
    },
  }
}
