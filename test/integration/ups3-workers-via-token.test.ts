// The gateway tells its own Via entries from a client's by a token (ups3-forged-via-loop): with
// server.workers, a loop passes through every worker, and each must count the others' entries as
// its own, or a loop went on for 8 hops a worker. The token is the process's, in the workers'
// shared key store: every worker writes the same, and a loop through them ends within 8 hops.
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { closeAfterEach } from '../helpers/lifecycle.ts'
import { startUpstream } from '../helpers/upstream.ts'
import { metricValue } from '../helpers/wait.ts'
import { onNewConnection, serveWithWorkers } from '../helpers/workers.ts'

const closeLater = closeAfterEach()

describe('a forwarding loop through several workers', () => {
  it('is counted by one token, every worker\'s, and ends within 8 hops', { timeout: 60_000 }, async () => {
    const dir = await mkdtemp(join(tmpdir(), 'bouncer-ups3-via-workers-'))
    closeLater(() => rm(dir, { recursive: true, force: true }))
    const echo = await startUpstream()
    closeLater(() => echo.close())
    const { gateway } = await serveWithWorkers(dir, (port) => ({
      upstreams: [{ name: 'itself', url: `http://127.0.0.1:${port}`, timeout: '20s' }, { name: 'echo', url: echo.url }],
      routes: [
        { id: 'loop', path: '/loop/*', upstream: 'itself', public: true },
        { id: 'echo', path: '/*', upstream: 'echo', public: true },
      ],
    }), { workers: 2 })
    closeLater(() => gateway.stop())

    const tokens = new Set<string>()
    for (let i = 0; i < 12; i++) {
      const res = await onNewConnection(`${gateway.url}/echo`)
      const via = (JSON.parse(res.body) as { headers: Record<string, string> }).headers.via as string
      tokens.add(/^1\.1 bouncer \(([A-Za-z0-9_-]+)\)$/.exec(via)?.[1] ?? via)
    }
    expect(tokens.size).toBe(1)

    const looped = await onNewConnection(`${gateway.url}/loop/x`)
    expect(looped.status).toBe(502)
    const problem = JSON.parse(looped.body) as { code: string; detail: string }
    expect(problem.code).toBe('upstream_error')
    expect(problem.detail).toMatch(/through this gateway 8 times already/)
    // Each hop relays the next one's 502: 8 of them, one refused, not 8 a worker (24).
    const relayed = await metricValue(gateway.adminUrl, 'bouncer_requests_total{route="loop",status="502",decision="allow"}')
    expect(relayed).toBe(8)
  })
})
