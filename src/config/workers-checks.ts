// Checks of server.workers (src/instance/workers): request-path workers share one port by
// SO_REUSEPORT, which Node offers on Linux (and the BSDs) only; more workers than cores only take
// turns on them.
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
  if (config.server.workers !== 'auto' && count > cores) {
    findings.push({ severity: 'warning', path: ['server', 'workers'], message: `${count} workers on a host with ${cores} cores take turns on them (auto is one per core)` })
  }
  return findings
}
