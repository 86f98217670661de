// Found by a probe: with server.workers: 2 every worker ran upstreams[].health_check itself, so a
// target got twice the configured probe rate (40 checks in 10 s at interval 500ms, 20 with one
// worker), and the workers disagreed on a target whose checks failed every other time: w1 took it
// out, w2 kept it, the merged bouncer_upstream_target_up said 0 while 26 of 100 requests on fresh
// connections still went to it. The checks now run once per gateway, in the first worker, and the
// others apply its verdicts (upstream/health-share.ts).
import { createServer, type Server } from 'node:http'
import { mkdtemp, rm } from 'node:fs/promises'
import type { AddressInfo } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { ServeProcess } from '../helpers/cli.ts'
import { metricValue, waitFor } from '../helpers/wait.ts'
import { onNewConnection, serveWithWorkers } from '../helpers/workers.ts'

const INTERVAL_MS = 300

interface Target {
  name: string
  url: string
  server: Server
  /** When each health check arrived (ms, this process's clock). */
  checks: number[]
  /** The health checks' answers, in turn, from the check numbered `from` on (before: 200). */
  healthAnswers: { from: number; statuses: number[] } | null
}

async function startTarget(name: string): Promise<Target> {
  const target: Target = { name, url: '', server: createServer(), checks: [], healthAnswers: null }
  target.server.on('request', (req, res) => {
    if (req.url === '/health') {
      const answers = target.healthAnswers
      const status = answers === null ? 200 : (answers.statuses[(target.checks.length - answers.from) % answers.statuses.length] as number)
      target.checks.push(Date.now())
      res.writeHead(status).end()
      return
    }
    res.writeHead(200, { 'content-type': 'text/plain' }).end(name)
  })
  await new Promise<void>((resolve) => target.server.listen(0, '127.0.0.1', resolve))
  target.url = `http://127.0.0.1:${(target.server.address() as AddressInfo).port}`
  return target
}

let dir: string
let gateway: ServeProcess
let good: Target
let flaky: Target

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'bouncer-workers-health-'))
  good = await startTarget('good')
  flaky = await startTarget('flaky')
  ;({ gateway } = await serveWithWorkers(dir, () => ({
    upstreams: [{
      name: 'app',
      targets: [good.url, flaky.url],
      // Out after 2 failed checks in a row, back after 3 passes in a row.
      health_check: { path: '/health', interval: `${INTERVAL_MS}ms`, timeout: '1s', unhealthy_after: 2, healthy_after: 3 },
    }],
    routes: [{ id: 'app', path: '/app/*', upstream: 'app', public: true }],
  })))
}, 120_000)

afterAll(async () => {
  await gateway?.stop('SIGKILL')
  await Promise.all([good, flaky].filter(Boolean).map((t) => new Promise((resolve) => t.server.close(resolve))))
  await rm(dir, { recursive: true, force: true })
})

describe('server.workers: upstream health checks', () => {
  it('checks a target at the configured interval, once for the gateway, not once per worker', async () => {
    // From the 3rd check on (every worker has started), over the next 10.
    await waitFor(() => good.checks.length >= 13, '13 health checks of the target', 20_000)
    const span = (good.checks[12] as number) - (good.checks[2] as number)
    const perInterval = (10 * INTERVAL_MS) / span
    // One prober: at most one check an interval (its timer starts after a check ends); two: about 2.
    expect(perInterval, `10 checks in ${span} ms`).toBeLessThanOrEqual(1.5)
  }, 60_000)

  it('a target taken out by its health checks is out of rotation in every worker', async () => {
    // Its checks now fail twice, pass twice, …: the checks' sequence takes it out at once and never
    // brings it back (3 passes in a row needed). Split between two probers, each saw fail, pass, ….
    flaky.healthAnswers = { from: flaky.checks.length, statuses: [503, 503, 200, 200] }
    const up = `bouncer_upstream_target_up{upstream="app",target="${flaky.url}"}`
    await waitFor(async () => (await metricValue(gateway.adminUrl, up)) === 0, 'the flaky target reported down', 20_000)
    const served: string[] = []
    for (let i = 0; i < 30; i++) {
      const res = await onNewConnection(`${gateway.url}/app/work`)
      served.push(res.status === 200 ? res.body : `${res.status} ${res.body}`)
    }
    expect(served.filter((body) => body !== 'good'), 'requests not served by the healthy target').toEqual([])
    expect(await metricValue(gateway.adminUrl, up)).toBe(0)
  }, 60_000)
})
