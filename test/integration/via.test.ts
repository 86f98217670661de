// RFC 9110 §7.6.3: a proxy MUST send Via in each message it forwards, requests and answers, after
// the entries the message came with, naming the protocol it received the message in. The gateway
// names itself by the pseudonym `bouncer` (no host, no version); in requests with a comment holding
// the process's token (`(token)` here), by which it counts its own entries for a loop. Asserted on what a real upstream
// received and on what a real client got back, over HTTP/1.1, HTTP/1.0, HTTP/2 and a WebSocket
// handshake; the gateway's own answers forward nothing and carry no Via.
import { once } from 'node:events'
import { createServer, type IncomingMessage, type Server } from 'node:http'
import type { AddressInfo, Socket } from 'node:net'
import { readFileSync } from 'node:fs'
import { connect as tcpConnect } from 'node:net'
import { request } from 'undici'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { createPki, type TestPki } from '../helpers/certs.ts'
import { startTestGateway, type TestGateway } from '../helpers/gateway.ts'
import { h2Session } from '../helpers/h2-gateway.ts'
import { rawRequest } from '../helpers/raw.ts'
import { echo, startUpstream, type Received, type TestUpstream } from '../helpers/upstream.ts'
import { acceptWebSocket } from '../helpers/websocket.ts'

let pki: TestPki
let upstream: TestUpstream
let wsServer: Server
let wsReceived: IncomingMessage | undefined
let gateway: TestGateway
let h2: TestGateway
let port: number

beforeAll(async () => {
  pki = createPki()
  // Echoes the request; /cached/ answers as if a cache in front of the app had added its own Via.
  upstream = await startUpstream((req, res, received) => {
    if (req.url?.startsWith('/cached/')) res.setHeader('via', req.url.endsWith('/two') ? ['1.1 varnish', '1.1 app-sidecar'] : '1.1 varnish')
    echo(req, res, received)
  })
  wsServer = createServer((_req, res) => res.end('not a websocket'))
  wsServer.on('upgrade', (req: IncomingMessage, socket: Socket) => {
    wsReceived = req
    acceptWebSocket(req, socket)
    socket.on('error', () => {})
    socket.on('end', () => socket.end())
  })
  wsServer.listen(0, '127.0.0.1')
  await once(wsServer, 'listening')
  const wsUrl = `http://127.0.0.1:${(wsServer.address() as AddressInfo).port}`
  gateway = await startTestGateway({
    upstreams: [{ name: 'echo', url: upstream.url }, { name: 'ws', url: wsUrl }],
    routes: [{ id: 'ws', path: '/ws/*', upstream: 'ws', public: true, websocket: true }, { id: 'echo', path: '/*', upstream: 'echo', public: true }],
  })
  port = Number(new URL(gateway.url).port)
  h2 = await startTestGateway({
    server: { tls: { cert: pki.server.cert, key: pki.server.key }, http2: true, hosts: ['localhost'] },
    upstreams: [{ name: 'echo', url: upstream.url }],
    routes: [{ id: 'echo', path: '/*', upstream: 'echo', public: true }],
  })
})

afterAll(async () => {
  await gateway?.close()
  await h2?.close()
  await upstream?.close()
  wsServer?.close()
})

/** The Via field lines the upstream received, in order. */
function viaLines(received: Received): string[] {
  return received.rawHeaders.filter((_, i) => i % 2 === 1 && received.rawHeaders[i - 1]?.toLowerCase() === 'via').map(tokenNamed)
}

/** The gateway's token in a Via line as `(token)`: it is the process's, random. */
function tokenNamed(line: string): string {
  return line.replace(/ bouncer \([A-Za-z0-9_-]{12}\)/g, ' bouncer (token)')
}

describe('Via on forwarded requests', () => {
  it('an HTTP/1.1 request reaches the upstream with Via: 1.1 bouncer, and its answer the client with it too', async () => {
    const res = await request(`${gateway.url}/plain`)
    const received = await res.body.json() as Received
    expect(viaLines(received)).toEqual(['1.1 bouncer (token)'])
    expect(res.headers.via).toBe('1.1 bouncer')
  })

  it('a client’s Via passes, with the gateway’s entry after it', async () => {
    const res = await request(`${gateway.url}/through-proxies`, { headers: { via: '1.0 corp-proxy, 1.1 edge' } })
    const received = await res.body.json() as Received
    expect(viaLines(received)).toEqual(['1.0 corp-proxy, 1.1 edge', '1.1 bouncer (token)'])
    expect(tokenNamed(received.headers.via as string)).toBe('1.0 corp-proxy, 1.1 edge, 1.1 bouncer (token)')
  })

  it('an HTTP/1.0 request is received as 1.0', async () => {
    const res = await rawRequest(port, 'GET /old HTTP/1.0\r\nHost: gw\r\n\r\n')
    expect(res.status).toBe(200)
    expect(viaLines(JSON.parse(res.body) as Received)).toEqual(['1.0 bouncer (token)'])
  })

  it('an HTTP/2 request is received as 2', async () => {
    const client = await h2Session(h2.url, readFileSync(pki.ca.cert))
    try {
      const stream = client.request({ ':path': '/h2', ':method': 'GET', via: '2 cdn' }, { endStream: true })
      const [headers] = await once(stream, 'response') as [Record<string, string>]
      const chunks: Buffer[] = []
      for await (const chunk of stream) chunks.push(chunk as Buffer)
      expect(headers[':status']).toBe(200)
      expect(viaLines(JSON.parse(Buffer.concat(chunks).toString('utf8')) as Received)).toEqual(['2 cdn', '2 bouncer (token)'])
      expect(headers.via).toBe('1.1 bouncer')
    } finally {
      client.close()
    }
  })

  it('a WebSocket handshake reaches the upstream with Via, and its 101 the client with it', async () => {
    const socket = tcpConnect(port, '127.0.0.1')
    await once(socket, 'connect')
    socket.write('GET /ws/chat HTTP/1.1\r\nHost: gw\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n')
    let head = ''
    for await (const chunk of socket) {
      head += (chunk as Buffer).toString('latin1')
      if (head.includes('\r\n\r\n')) break
    }
    socket.destroy()
    expect(head).toMatch(/^HTTP\/1\.1 101 /)
    expect(head.toLowerCase()).toContain('\r\nvia: 1.1 bouncer\r\n')
    expect(tokenNamed(wsReceived?.headers.via as string)).toBe('1.1 bouncer (token)')
  })
})

describe('Via on forwarded answers', () => {
  it('follows the upstream’s own Via entries', async () => {
    const one = await request(`${gateway.url}/cached/one`)
    await one.body.dump()
    expect(one.headers.via).toBe('1.1 varnish, 1.1 bouncer')
    const two = await request(`${gateway.url}/cached/two`)
    await two.body.dump()
    // Two field lines from the upstream stay two, and the gateway's is a third after them (RFC 9110 §5.3: one list).
    expect(two.headers.via).toEqual(['1.1 varnish', '1.1 app-sidecar', '1.1 bouncer'])
  })

  it('the gateway’s own answers forward nothing and carry none', async () => {
    const res = await rawRequest(port, 'GET /a/../b HTTP/1.1\r\nHost: gw\r\n\r\n')
    expect(res.status).toBe(400)
    expect(res.headers.via).toBeUndefined()
  })
})
