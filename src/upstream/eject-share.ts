// server.workers: passive ejection (`eject.after` consecutive failures) is counted by each worker
// on its own requests, but the verdict is the gateway's: the worker that ejects a target tells the
// others, which take it out for the same `eject.for`. Before, each other worker went on sending the
// failing target its own `after` tries (an item of stop 39's notes). One message per ejection, none
// per request: the counts stay each worker's.
import { workerChannel, type WorkerChannel } from './worker-channel.ts'

/** This worker ejected the target at the url posted: the others follow. */
export type EjectionShare = WorkerChannel<string>

/**
 * The channel of one upstream's ejections, named by its whole config, so an upstream a reload
 * changed (its targets, its `eject`) never hears the other's. `apply` gets the other workers' ejections.
 */
export function shareEjections(upstreamConfig: unknown, apply: (url: string) => void): EjectionShare {
  return workerChannel('upstream-ejections', upstreamConfig, (data): data is string => typeof data === 'string', apply)
}
