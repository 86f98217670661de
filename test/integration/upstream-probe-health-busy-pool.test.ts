// Found by an adversarial probe of the upstream side: health checks went through the target's
// request pool, so with every connection held by long answers (event streams, downloads: a
// target's max_connections of them) a check waited in undici's queue, which heeds no abort signal.
// The check never ended, no round after it ran, and the target stayed in rotation whatever its
// health endpoint said: one that began answering 503 to its checks (draining for a deploy) kept
// getting requests. Now the checks go over a connection of their own.
import { createServer, type ServerResponse } from 'node:http'
import type { AddressInfo } from 'node:net'
import { request } from 'undici'
import { describe, expect, it } from 'vitest'
import { startTestGateway } from '../helpers/gateway.ts'
import { closeAfterEach } from '../helpers/lifecycle.ts'
import { metricValue, waitFor } from '../helpers/wait.ts'

const closeLater = closeAfterEach()

describe('health checks while long answers hold every pool connection', () => {
  it('a target whose checks start failing is taken out, and back when they pass', async () => {
    let healthy = true
    const streams = new Set<ServerResponse>()
    const server = createServer((req, res) => {
      req.resume()
      if (req.url === '/health') {
        res.writeHead(healthy ? 200 : 503).end()
        return
      }
      if (req.url === '/events') {
        res.writeHead(200, { 'content-type': 'text/event-stream' })
        res.write('data: hello\n\n')
        streams.add(res)
        return
      }
      res.end('ok')
    })
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
    closeLater(() => new Promise<void>((resolve) => {
      server.closeAllConnections()
      server.close(() => resolve())
    }))
    const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`
    const gw = await startTestGateway({
      upstreams: [{ name: 'api', url, max_connections: 2, health_check: { path: '/health', interval: '100ms', timeout: '500ms', unhealthy_after: 2, healthy_after: 2 } }],
      routes: [{ id: 'api', path: '/*', upstream: 'api', public: true }],
    })
    closeLater(() => gw.close())
    const up = () => metricValue(gw.adminUrl, `bouncer_upstream_target_up{upstream="api",target="${url}"}`)

    // Two event streams: both of the pool's connections, for as long as they are read.
    const held = await Promise.all([1, 2].map(() => request(`${gw.url}/events`)))
    for (const stream of held) {
      stream.body.resume()
      closeLater(async () => void stream.body.destroy())
    }
    await waitFor(() => streams.size === 2, 'two streams open upstream')

    healthy = false
    // Before the fix the check waited behind the streams for good: the target stayed up.
    await waitFor(async () => (await up()) === 0, 'the target taken out by its failing checks', 10_000)
    const refused = await request(`${gw.url}/x`)
    expect(refused.statusCode).toBe(503)
    expect(((await refused.body.json()) as { code: string }).code).toBe('upstream_unavailable')

    healthy = true
    await waitFor(async () => (await up()) === 1, 'the target back once its checks pass', 10_000)
    // The streams were never interrupted by any of it.
    for (const res of streams) expect(res.destroyed).toBe(false)
  })
})
