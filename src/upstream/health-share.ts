// server.workers: the health checks run once for the gateway, as Envoy's do, not once per worker.
// The first worker (`w1`, and its replacement, which keeps the id) probes; after every round it
// posts each target's verdict on a BroadcastChannel, which reaches the process's other threads,
// and the other workers, which never probe, apply it. Every round, not only a change, so a worker
// that starts late (a replacement, a reload's new upstream) agrees at the next round; but only
// once the prober has reached a verdict (a run of passes or failures at its threshold, once), so a
// new prober never puts back a target the others hold out. Until then, or while w1 is being replaced, a
// worker keeps the health it had (a target starts healthy); one that hears nothing for longer (w1
// cannot start again) checks the targets itself until verdicts come again (health.ts).
// A single process (no workers) checks alone, as it always did.
import type { HealthCheckConfig } from '../config/index.ts'
import { workerChannel, type WorkerChannel } from './worker-channel.ts'

/** What this thread does of an upstream's checks: all of them alone, probe and share, or apply what is shared. */
export type HealthCheckRole = 'alone' | 'prober' | 'follower'

/** One target's health after a round: what the prober says, and the reason of its last failure. */
export interface HealthVerdict {
  target: string
  healthy: boolean
  reason: string
}

export type HealthShare = WorkerChannel<HealthVerdict>

/**
 * The prober's side: posts each round's verdicts to the other workers. The channel is named by the
 * upstream's name and the check itself, so a verdict reached under other settings (a reload changed
 * the path; the retiring upstream still probes the old one until its requests finish) is never applied.
 */
export function shareHealth(upstream: string, check: HealthCheckConfig): HealthShare {
  return workerChannel('upstream-health', [upstream, check], isVerdict, null)
}

/** The other workers' side: `apply` gets each verdict posted for this upstream's checks; answers the function that stops listening. */
export function followHealth(upstream: string, check: HealthCheckConfig, apply: (verdict: HealthVerdict) => void): () => void {
  const channel = workerChannel('upstream-health', [upstream, check], isVerdict, apply)
  return () => channel.close()
}

function isVerdict(data: unknown): data is HealthVerdict {
  if (typeof data !== 'object' || data === null) return false
  const verdict = data as Record<string, unknown>
  return typeof verdict.target === 'string' && typeof verdict.healthy === 'boolean' && typeof verdict.reason === 'string'
}
