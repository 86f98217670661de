// Found by an adversarial probe of the upstream side: a try for which every connection of its
// target's pool (max_connections) is busy waits in undici's queue, which has no timer and no way to
// withdraw an entry. Behind connections a hung upstream held (each freed only by `timeout`), the
// queue drained max_connections at a time, so the tenth request to a hung upstream at timeout 1 s
// and max_connections 2 got its 504 after 7 s; and a client that left while its request was queued
// kept its place under max_concurrent until the pool reached it. Now a queued try gets `timeout` to
// leave the queue (504 upstream_timeout), and a client that leaves gives its place back at once.
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http'
import type { AddressInfo } from 'node:net'
import { request } from 'undici'
import { describe, expect, it } from 'vitest'
import { startTestGateway } from '../helpers/gateway.ts'
import { closeAfterEach } from '../helpers/lifecycle.ts'
import { metricValue, waitFor } from '../helpers/wait.ts'

const closeLater = closeAfterEach()

/** /hang never answers; anything else answers at once. */
async function hangingUpstream(): Promise<string> {
  const held = new Set<ServerResponse>()
  const server = createServer((req: IncomingMessage, res: ServerResponse) => {
    req.resume()
    if (req.url === '/hang') held.add(res)
    else res.end('ok')
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  closeLater(() => new Promise<void>((resolve) => {
    server.closeAllConnections()
    server.close(() => resolve())
  }))
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`
}

async function gatewayFor(url: string, upstream: Record<string, unknown>) {
  const gw = await startTestGateway({
    upstreams: [{ name: 'api', url, ...upstream }],
    routes: [{ id: 'api', path: '/*', upstream: 'api', public: true }],
  })
  closeLater(() => gw.close())
  return gw
}

async function timed(url: string, signal?: AbortSignal): Promise<{ status: number; code: string | undefined; ms: number }> {
  const started = performance.now()
  const res = await request(url, { signal })
  const text = await res.body.text()
  return { status: res.statusCode, code: res.statusCode >= 400 ? (JSON.parse(text) as { code: string }).code : undefined, ms: performance.now() - started }
}

describe('tries waiting for a connection of a busy pool', () => {
  it('ten requests to a hung upstream at max_connections 2 all get their 504 about `timeout` after they came, twice over', async () => {
    const url = await hangingUpstream()
    const gw = await gatewayFor(url, { timeout: '1s', max_connections: 2 })
    for (let round = 0; round < 2; round++) {
      const answers = await Promise.all(Array.from({ length: 10 }, () => timed(`${gw.url}/hang`, AbortSignal.timeout(20_000))))
      expect(answers.map((a) => [a.status, a.code])).toEqual(Array.from({ length: 10 }, () => [504, 'upstream_timeout']))
      // Before the fix the last two waited for four rounds of `timeout` ahead of them (7 s and more).
      const slowest = Math.max(...answers.map((a) => a.ms))
      expect(slowest).toBeLessThan(4_000)
    }
    // The pool is whole again: a request that the upstream answers gets its answer.
    const after = await timed(`${gw.url}/fine`)
    expect(after.status).toBe(200)
    expect(await metricValue(gw.adminUrl, `bouncer_upstream_target_in_flight{upstream="api",target="${url}"}`)).toBe(0)
  })

  it('a queued request whose client leaves gives its max_concurrent place back at once', async () => {
    const url = await hangingUpstream()
    const gw = await gatewayFor(url, { timeout: '30s', max_connections: 1, max_concurrent: 3 })
    const inFlight = () => metricValue(gw.adminUrl, `bouncer_upstream_target_in_flight{upstream="api",target="${url}"}`)
    const holder = new AbortController()
    const first = request(`${gw.url}/hang`, { signal: holder.signal }).catch(() => null)
    await waitFor(async () => (await inFlight()) === 1, 'the first request holding the one connection')
    const leaving = new AbortController()
    const queued = [1, 2].map(() => request(`${gw.url}/hang`, { signal: leaving.signal }).catch(() => null))
    await waitFor(async () => (await inFlight()) === 3, 'two requests queued behind it')
    leaving.abort()
    await Promise.all(queued)
    // Before the fix they stayed in flight (and max_concurrent full: 503 upstream_saturated) until the pool reached them.
    await waitFor(async () => (await inFlight()) === 1, 'the two that left given back', 5_000)
    holder.abort()
    await first
    await waitFor(async () => (await inFlight()) === 0, 'all given back')
    const after = await timed(`${gw.url}/fine`)
    expect(after.status).toBe(200)
  })
})
