// Cross-site WebSocket hijacking with a client certificate: a browser presents its certificate
// whatever page opens the connection, as it sends a session cookie, so another origin's page opened
// a tunnel as the certificate's holder and sent anything through it. A browser's handshake by client
// certificate (it carries Origin) now needs the gateway's own origin, as a session cookie's does; a
// handshake without Origin is a service's, not a browser's, and goes on as before.
import { once } from 'node:events'
import { readFileSync } from 'node:fs'
import { createServer, type Server } from 'node:http'
import type { AddressInfo, Socket } from 'node:net'
import { connect } from 'node:tls'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { clientCertGateway, createPki, type Issued, type TestPki } from '../helpers/certs.ts'
import type { TestGateway } from '../helpers/gateway.ts'
import { waitFor } from '../helpers/wait.ts'
import { echoWebSocket } from '../helpers/websocket.ts'

let pki: TestPki
let wsServer: Server
let gateway: TestGateway
let loader: Issued
let handshakes = 0

beforeAll(async () => {
  pki = createPki()
  loader = pki.ca.issue('loader', { usage: 'client', san: ['URI:spiffe://prod/ns/etl/sa/loader'] })
  wsServer = createServer((_req, res) => res.end('not a websocket'))
  wsServer.on('upgrade', (req, socket: Socket) => {
    handshakes++
    echoWebSocket(req, socket)
  })
  wsServer.listen(0, '127.0.0.1')
  await once(wsServer, 'listening')
  gateway = await clientCertGateway(pki, `http://127.0.0.1:${(wsServer.address() as AddressInfo).port}`, {
    routes: [{ id: 'live', path: '/live/*', upstream: 'api', accept: ['client_cert'], websocket: true }],
  })
}, 60_000)

afterAll(async () => {
  await gateway?.close()
  wsServer?.close()
  pki?.close()
})

/** A handshake over TLS presenting the loader's certificate, with `origin` (or none): the answer's status line and body. */
async function handshake(origin: string | null): Promise<{ status: string; body: string }> {
  const port = Number(new URL(gateway.url).port)
  const socket = connect({ host: '127.0.0.1', port, ca: readFileSync(pki.ca.cert), servername: 'localhost', cert: readFileSync(loader.cert), key: readFileSync(loader.key), ALPNProtocols: ['http/1.1'] })
  await once(socket, 'secureConnect')
  let text = ''
  socket.on('data', (c: Buffer) => (text += c.toString('latin1')))
  socket.on('error', () => {})
  let closed = false
  socket.on('close', () => (closed = true))
  const originLine = origin === null ? '' : `Origin: ${origin}\r\n`
  socket.write(`GET /live/feed HTTP/1.1\r\nHost: localhost:${port}\r\n${originLine}Connection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n`)
  await waitFor(() => text.startsWith('HTTP/1.1 101') ? text.includes('\r\n\r\n') : closed, 'the handshake answer')
  socket.destroy()
  const end = text.indexOf('\r\n\r\n')
  return { status: text.split('\r\n')[0] ?? '', body: end === -1 ? '' : text.slice(end + 4) }
}

describe('a WebSocket handshake by client certificate', () => {
  it('from another origin\'s page is refused 403 cors_origin_denied and never reaches the upstream', async () => {
    const before = handshakes
    for (const origin of ['https://evil.example', 'null', `http://localhost:${new URL(gateway.url).port}`]) {
      const answer = await handshake(origin)
      expect(answer.status, origin).toBe('HTTP/1.1 403 Forbidden')
      expect(answer.body).toContain('"code":"cors_origin_denied"')
      expect(answer.body).toContain(`must come from https://localhost:${new URL(gateway.url).port}, not from another origin`)
    }
    expect(handshakes).toBe(before)
  })

  it('from the gateway\'s own origin, or without Origin (not a browser), opens the tunnel', async () => {
    const port = new URL(gateway.url).port
    expect((await handshake(`https://localhost:${port}`)).status).toBe('HTTP/1.1 101 Switching Protocols')
    expect((await handshake(null)).status).toBe('HTTP/1.1 101 Switching Protocols')
  })
})
