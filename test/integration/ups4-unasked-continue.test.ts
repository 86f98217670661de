// RFC 9110 §15.2: a client MUST be able to parse one or more 1xx answers before the final one, even
// if it did not expect any. Some servers (IIS, old Java containers, a node:http app calling
// writeContinue) send `100 Continue` to every upload, asked or not; the gateway never forwards
// Expect, so every such answer was one it did not ask for, and undici 7 drops the connection on it:
// the client got 502 upstream_error for an upload the upstream had taken and answered.
import { once } from 'node:events'
import { readFileSync } from 'node:fs'
import { createServer } from 'node:https'
import type { AddressInfo, Socket } from 'node:net'
import { request } from 'undici'
import { describe, expect, it } from 'vitest'
import { createPki } from '../helpers/certs.ts'
import { startTestGateway } from '../helpers/gateway.ts'
import { closeAfterEach } from '../helpers/lifecycle.ts'
import { startRawUpstream } from '../helpers/raw-upstream.ts'
import { startUpstream } from '../helpers/upstream.ts'

const closeLater = closeAfterEach()

async function gatewayTo(url: string) {
  const gw = await startTestGateway({
    upstreams: [{ name: 'app', url }],
    routes: [{ id: 'app', path: '/*', upstream: 'app', public: true }],
  })
  closeLater(() => gw.close())
  return gw
}

/** Writes the parts one by one, each once the previous has left (separate reads at the gateway, as a slow link makes them). */
async function writeApart(socket: Socket, parts: string[]): Promise<void> {
  for (const part of parts) {
    socket.write(part, 'latin1')
    await new Promise((resolve) => setTimeout(resolve, 15))
  }
}

describe('an upstream that answers 100 Continue to a request that did not expect one', () => {
  it('is read past: the client gets the final answer, and the connection is kept', async () => {
    const upstream = await startUpstream((req, res, received) => {
      if (req.method === 'POST') res.writeContinue()
      res.writeHead(201, { 'content-type': 'text/plain' })
      res.end(`got ${received.bodyBytes}`)
    })
    closeLater(() => upstream.close())
    const gw = await gatewayTo(upstream.url)

    for (let i = 0; i < 3; i++) {
      const res = await request(`${gw.url}/upload`, { method: 'POST', body: 'x'.repeat(100) })
      expect(res.statusCode).toBe(201)
      expect(await res.body.text()).toBe('got 100')
      expect(res.headers.via).toBe('1.1 bouncer')
    }
    expect(upstream.received.map((r) => r.headers.expect)).toEqual([undefined, undefined, undefined])
    // The 100 cost no connection: one carried all three.
    expect(upstream.connections()).toBe(1)
  })

  it('is read past over TLS too', async () => {
    const pki = createPki()
    closeLater(() => pki.close())
    const server = createServer({ key: readFileSync(pki.server.key), cert: readFileSync(pki.server.cert) }, (req, res) => {
      res.writeContinue()
      req.resume()
      req.on('end', () => res.end('tls ok'))
    })
    server.listen(0, '127.0.0.1')
    await once(server, 'listening')
    closeLater(() => {
      server.closeAllConnections()
      server.close()
    })
    const gw = await startTestGateway({
      upstreams: [{ name: 'app', url: `https://127.0.0.1:${(server.address() as AddressInfo).port}`, tls: { ca: pki.ca.cert } }],
      routes: [{ id: 'app', path: '/*', upstream: 'app', public: true }],
    })
    closeLater(() => gw.close())

    const res = await request(`${gw.url}/a`, { method: 'PUT', body: 'hello' })
    expect(res.statusCode).toBe(200)
    expect(await res.body.text()).toBe('tls ok')
  })

  it('is read past when it comes in pieces, twice, around a 103', async () => {
    const raw = await startRawUpstream((_head, socket) => {
      void writeApart(socket, [
        'HTTP/1.1 10', '0 Continue\r', '\n\r\n',
        'HTTP/1.1 103 Early Hints\r\nLink: </app.css>; rel=preload\r\n\r\n',
        // No reason phrase: llhttp takes it, as undici reads a final status line so.
        'HTTP/1.1 100\r\nX-Note: again\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok',
      ])
    })
    closeLater(() => raw.close())
    const gw = await gatewayTo(raw.url)

    const res = await request(`${gw.url}/a`, { method: 'POST', body: 'hello' })
    expect(res.statusCode).toBe(200)
    expect(await res.body.text()).toBe('ok')
    expect(res.headers['x-note']).toBeUndefined()
  })

  it('an endless run of 100s, one every 150 ms, is 504 upstream_timeout once `timeout` has passed', async () => {
    const timers = new Set<NodeJS.Timeout>()
    const raw = await startRawUpstream((_head, socket) => {
      const timer = setInterval(() => socket.write('HTTP/1.1 100 Continue\r\n\r\n'), 150)
      timers.add(timer)
      socket.once('close', () => clearInterval(timer))
    })
    closeLater(async () => {
      for (const timer of timers) clearInterval(timer)
      await raw.close()
    })
    const gw = await startTestGateway({
      upstreams: [{ name: 'app', url: raw.url, timeout: '1s' }],
      routes: [{ id: 'app', path: '/*', upstream: 'app', public: true }],
    })
    closeLater(() => gw.close())

    const started = performance.now()
    const res = await request(`${gw.url}/a`, { method: 'POST', body: 'hello', signal: AbortSignal.timeout(15_000) })
    expect(res.statusCode).toBe(504)
    expect(((await res.body.json()) as { code: string }).code).toBe('upstream_timeout')
    expect(performance.now() - started).toBeLessThan(10_000)
  })

  it('a 100 whose head HTTP/1.1 does not allow (bare LF) is still refused, not read past', async () => {
    const raw = await startRawUpstream((_head, socket) => {
      socket.write('HTTP/1.1 100 Continue\n\nHTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok')
    })
    closeLater(() => raw.close())
    const gw = await gatewayTo(raw.url)

    const res = await request(`${gw.url}/a`, { method: 'POST', body: 'hello' })
    expect(res.statusCode).toBe(502)
    expect(((await res.body.json()) as { code: string }).code).toBe('upstream_error')
  })

  it('a body that begins like a 100 head is relayed as it came', async () => {
    const body = 'HTTP/1.1 100 Continue\r\n\r\n'
    const raw = await startRawUpstream((_head, socket) => {
      socket.write(`HTTP/1.1 200 OK\r\nContent-Length: ${body.length}\r\n\r\n`)
      setTimeout(() => socket.write(body), 15)
    })
    closeLater(() => raw.close())
    const gw = await gatewayTo(raw.url)

    const res = await request(`${gw.url}/a`)
    expect(res.statusCode).toBe(200)
    expect(await res.body.text()).toBe(body)
  })
})
