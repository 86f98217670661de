// Found by an adversarial probe of the upstream side: a 5xx that `retries` sends on to another
// target is read and dropped first (so its connection stays reusable), and nothing bounded that
// read but undici's body timeout, which each chunk restarts. A target answering 503 with a body that
// never ends (a chunk every 100 ms) held the request and its client for good — the healthy target
// never asked — and one answering 503 with 200 MB made the gateway read all of it before the
// retry. Now a dropped answer gets 64 KiB and `timeout` from its head: past either, its connection
// is closed and the request goes on to the next target.
import { createServer, type Server, type ServerResponse } from 'node:http'
import type { AddressInfo } from 'node:net'
import { request } from 'undici'
import { describe, expect, it } from 'vitest'
import { startTestGateway } from '../helpers/gateway.ts'
import { closeAfterEach } from '../helpers/lifecycle.ts'
import { metricValue } from '../helpers/wait.ts'

const closeLater = closeAfterEach()

async function listen(server: Server): Promise<string> {
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  closeLater(() => new Promise<void>((resolve) => {
    server.closeAllConnections()
    server.close(() => resolve())
  }))
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`
}

/** A target that answers 503 and then writes its body as `write` decides; counts what it wrote. */
async function failing(write: (res: ServerResponse, sent: { bytes: number }) => void): Promise<{ url: string; sent: { bytes: number } }> {
  const sent = { bytes: 0 }
  const url = await listen(createServer((req, res) => {
    req.resume()
    write(res, sent)
  }))
  return { url, sent }
}

async function healthy(): Promise<{ url: string; bodies: string[] }> {
  const bodies: string[] = []
  const url = await listen(createServer((req, res) => {
    let body = ''
    req.setEncoding('utf8')
    req.on('data', (chunk: string) => (body += chunk))
    req.on('end', () => {
      bodies.push(body)
      res.end(`healthy got ${body.length}`)
    })
  }))
  return { url, bodies }
}

async function gatewayFor(targets: string[]) {
  const gw = await startTestGateway({
    upstreams: [{ name: 'api', targets, balance: 'round_robin', timeout: '1s', retries: { attempts: 2, on: ['503'] } }],
    routes: [{ id: 'api', path: '/*', upstream: 'api', public: true }],
  })
  closeLater(() => gw.close())
  return gw
}

describe('a 503 that is retried, whose body is endless or huge', () => {
  it('a body that never ends: the request goes on to the healthy target within `timeout`, not never', async () => {
    const bad = await failing((res, sent) => {
      res.writeHead(503, { 'content-type': 'text/plain' })
      const timer = setInterval(() => {
        res.write('x'.repeat(100))
        sent.bytes += 100
      }, 100)
      res.on('close', () => clearInterval(timer))
    })
    const good = await healthy()
    const gw = await gatewayFor([bad.url, good.url])
    const started = performance.now()
    // Before the fix this waited until the client's own bound.
    const res = await request(`${gw.url}/x`, { method: 'PUT', body: 'payload', signal: AbortSignal.timeout(15_000) })
    expect(res.statusCode).toBe(200)
    expect(await res.body.text()).toBe('healthy got 7')
    expect(performance.now() - started).toBeLessThan(10_000)
    // The body is sent again whole to the next target.
    expect(good.bodies).toEqual(['payload'])
    expect(await metricValue(gw.adminUrl, 'bouncer_upstream_retries_total{upstream="api"}')).toBe(1)
  })

  it('a 200 MB body: the gateway stops reading it long before its end', async () => {
    const bad = await failing((res, sent) => {
      res.writeHead(503, { 'content-length': String(200 * 1024 * 1024) })
      const chunk = Buffer.alloc(64 * 1024, 120)
      const pump = () => {
        while (sent.bytes < 200 * 1024 * 1024 && !res.destroyed) {
          sent.bytes += chunk.length
          if (!res.write(chunk)) return
        }
      }
      res.on('drain', pump)
      pump()
    })
    const good = await healthy()
    const gw = await gatewayFor([bad.url, good.url])
    const res = await request(`${gw.url}/x`, { signal: AbortSignal.timeout(15_000) })
    expect(res.statusCode).toBe(200)
    expect(await res.body.text()).toBe('healthy got 0')
    // What the target could write before the gateway closed: the socket buffers on both sides,
    // a few MB at most, never the 200 MB it announced.
    expect(bad.sent.bytes).toBeLessThan(32 * 1024 * 1024)
  })

  it('a short 503 is still read whole and its connection kept: the next retried 503 comes over the same one', async () => {
    const sockets = new Set<unknown>()
    const bad = await failing((res) => {
      sockets.add(res.socket)
      res.writeHead(503, { 'content-length': '4' })
      res.end('busy')
    })
    const good = await healthy()
    const gw = await gatewayFor([bad.url, good.url])
    for (let i = 0; i < 4; i++) {
      const res = await request(`${gw.url}/x`)
      expect(res.statusCode).toBe(200)
      await res.body.dump()
    }
    // round_robin: the first tries alternate, so the bad target saw two, on one connection.
    expect(sockets.size).toBe(1)
  })
})
