// A review: with server.workers only the first worker checks the targets, and the others apply its
// verdicts. A first worker that could not start again (a replacement failing on the config in
// force, in a loop) left the others with their last verdicts for good: a target that went down
// stayed in rotation. A follower that hears nothing for its checks' thresholds and two rounds
// more checks the targets itself, and stops once verdicts come again.
import { createServer, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import { Writable } from 'node:stream'
import { afterEach, expect, it } from 'vitest'
import type { HealthCheckConfig } from '../../../src/config/index.ts'
import { startHealthChecks } from '../../../src/upstream/health.ts'
import { shareHealth } from '../../../src/upstream/health-share.ts'
import { closeTarget, createTarget } from '../../../src/upstream/targets.ts'
import { createBackgroundTasks, createLogger } from '../../../src/telemetry/index.ts'
import { waitFor } from '../../helpers/wait.ts'

const cleanup: Array<() => unknown> = []
afterEach(async () => {
  for (const step of cleanup.splice(0).reverse()) await step()
})

it('a follower that hears no verdict checks the targets itself, until the prober is heard again', async () => {
  let checks = 0
  const server: Server = createServer((req, res) => {
    if (req.url === '/health') checks++
    res.writeHead(503).end() // down, as the first worker would have found
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  cleanup.push(() => new Promise((resolve) => server.close(resolve)))
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`
  const target = createTarget(url, { connections: 2, connectTimeoutMs: 1_000, timeoutMs: 1_000, tls: null })
  cleanup.push(() => closeTarget(target))
  const lines: string[] = []
  const logger = createLogger({ level: 'info', destination: new Writable({ write: (chunk: Buffer, _e, done) => (lines.push(chunk.toString()), done()) }) })
  const owner = { name: 'api', ejection: null, logger, targets: [target] }
  const check = { path: '/health', interval: 100, timeout: 100, unhealthy_after: 1, healthy_after: 1 } as HealthCheckConfig
  const stop = startHealthChecks(owner, check, createBackgroundTasks(logger, { backgroundFailed() {} }), 'follower')
  cleanup.push(stop)

  // No prober: after (1 + 2) rounds of interval + timeout, and the time a first worker's restart
  // may take (10 s), it checks for itself and takes the target out.
  await waitFor(() => !target.healthy, 'the follower to take the down target out', 20_000)
  expect(checks).toBeGreaterThan(0)
  expect(lines.some((line) => line.includes('no health verdict from the first worker'))).toBe(true)

  // The prober is back and says the target is up: the follower applies that and stops its own checks
  // (which would take it out again at the next round, as the target still answers 503).
  const prober = shareHealth('api', check)
  cleanup.push(() => prober.close())
  prober.post({ target: url, healthy: true, reason: '' })
  await waitFor(() => target.healthy, 'the verdict applied', 10_000)
  const checksThen = checks
  for (let round = 0; round < 10; round++) {
    prober.post({ target: url, healthy: true, reason: '' })
    await new Promise((resolve) => setTimeout(resolve, check.interval)) // the prober's rounds
    expect(target.healthy).toBe(true)
  }
  expect(checks - checksThen).toBeLessThanOrEqual(1) // at most one check already under way
  expect(lines.some((line) => line.includes('health checks are heard again'))).toBe(true)
}, 40_000)
