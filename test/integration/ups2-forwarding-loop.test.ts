// A careless operator's upstream url that names the gateway itself (a port swapped, a load
// balancer's name that leads back): each request was forwarded to the gateway again, and again,
// until the upstream's pool was full. One request held all 128 connections for `timeout` (30 s),
// left 129 records, and every other request of the upstream waited behind it (a probe). RFC 9110
// §7.6.3: Via is how a proxy sees a loop. A request that has come through this gateway
// MAX_BOUNCER_HOPS times already (its own Via entries) is not forwarded again: 502 upstream_error,
// which says why, within a few hops.
// A request through one other Bouncer (a legitimate chain) is forwarded as before.
import { once } from 'node:events'
import { createServer, type AddressInfo } from 'node:net'
import { request } from 'undici'
import { describe, expect, it } from 'vitest'
import { startTestGateway } from '../helpers/gateway.ts'
import { closeAfterEach } from '../helpers/lifecycle.ts'
import { metricValue } from '../helpers/wait.ts'
import { startUpstream } from '../helpers/upstream.ts'

const closeLater = closeAfterEach()

async function freePort(): Promise<number> {
  const probe = createServer().listen(0, '127.0.0.1')
  await once(probe, 'listening')
  const { port } = probe.address() as AddressInfo
  probe.close()
  await once(probe, 'close')
  return port
}

describe('an upstream url that leads back to the gateway', () => {
  it('gets a 502 that names the loop after a few hops, not the pool filled for `timeout`', async () => {
    const port = await freePort()
    const echo = await startUpstream()
    closeLater(() => echo.close())
    const gw = await startTestGateway({
      upstreams: [{ name: 'itself', url: `http://127.0.0.1:${port}`, timeout: '20s' }, { name: 'echo', url: echo.url }],
      routes: [
        { id: 'loop', path: '/loop/*', upstream: 'itself', public: true },
        { id: 'echo', path: '/*', upstream: 'echo', public: true },
      ],
    }, { port })
    closeLater(() => gw.close())

    const res = await request(`${gw.url}/loop/x`)
    const body = await res.body.json() as { code: string; detail: string }
    expect(res.statusCode).toBe(502)
    expect(body.code).toBe('upstream_error')
    expect(body.detail).toMatch(/loop/)
    const looped = await metricValue(gw.adminUrl, 'bouncer_requests_total{route="loop",status="502",decision="error"}')
    const relayed = (await metricValue(gw.adminUrl, 'bouncer_requests_total{route="loop",status="502",decision="allow"}')) ?? 0
    expect(looped).toBe(1)
    expect(relayed).toBeLessThanOrEqual(10)

    // One Bouncer in front of this one (a chain): forwarded.
    const chained = await request(`${gw.url}/ok`, { headers: { via: '1.1 bouncer' } })
    expect(chained.statusCode).toBe(200)
    const seen = (await chained.body.json()) as { headers: Record<string, string> }
    expect(seen.headers.via).toMatch(/^1\.1 bouncer, 1\.1 bouncer \([A-Za-z0-9_-]+\)$/)
  })
})
