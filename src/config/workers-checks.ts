// Checks of server.workers (src/instance/workers): request-path workers share one port by
// SO_REUSEPORT, which Node offers on Linux (and the BSDs) only; more workers than cores only take
// turns on them; what one worker keeps in its own memory (sign-in sessions) is not the others'.
import { availableParallelism } from 'node:os'
import type { Finding } from './diagnostics.ts'
import type { Config } from './schema.ts'

/** How many request-path workers the config asks for on this host (`auto`: one per core). */
export function workerCount(server: Pick<Config['server'], 'workers'>, cores = availableParallelism()): number {
  return server.workers === 'auto' ? cores : server.workers
}

export function workersFindings(config: Config, platform: NodeJS.Platform = process.platform, cores = availableParallelism()): Finding[] {
  const findings: Finding[] = []
  const count = workerCount(config.server, cores)
  if (count > 1 && platform !== 'linux' && platform !== 'freebsd') {
    findings.push({ severity: 'error', path: ['server', 'workers'], message: `${count} workers share the port by SO_REUSEPORT, which Node offers on Linux and FreeBSD, not on ${platform}: set server.workers to 1` })
  }
  // Each worker has its own memory session store: a sign-in's callback landing on another worker
  // fails, a session is unknown to the others, and DELETE /api/sessions/{id} ends it on one worker
  // only (an adversarial probe). The store has to be one they share.
  if (count > 1 && config.sign_in?.session.store.type === 'memory') {
    findings.push({ severity: 'error', path: ['sign_in', 'session', 'store'], message: `the memory session store is one per worker: with ${count} workers a session signed in on one is unknown to the others and cannot be revoked on all; set sign_in.session.store to sqlite or redis (or server.workers to 1)` })
  }
  if (config.server.workers !== 'auto' && count > cores) {
    findings.push({ severity: 'warning', path: ['server', 'workers'], message: `${count} workers on a host with ${cores} cores take turns on them (auto is one per core)` })
  }
  return findings
}
