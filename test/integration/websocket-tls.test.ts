// WebSocket over TLS, with and without http2 (ALPN picks HTTP/1.1): written by an adversarial probe (helper); both held.
import { readFileSync } from 'node:fs'
import { createServer, type Server } from 'node:http'
import { once } from 'node:events'
import type { AddressInfo, Socket } from 'node:net'
import { connect, type TLSSocket } from 'node:tls'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { createPki, type TestPki } from '../helpers/certs.ts'
import { startTestGateway, type TestGateway } from '../helpers/gateway.ts'
import { waitFor } from '../helpers/wait.ts'
import { echoWebSocket } from '../helpers/websocket.ts'

let pki: TestPki
let wsServer: Server

beforeAll(async () => {
  pki = createPki()
  wsServer = createServer((_req, res) => res.end('not a websocket'))
  wsServer.on('upgrade', (req, socket: Socket) => {
    echoWebSocket(req, socket)
  })
  wsServer.listen(0, '127.0.0.1')
  await once(wsServer, 'listening')
})
afterAll(() => {
  wsServer.close()
  pki.close()
})

async function tunnelOver(gw: TestGateway): Promise<{ status: string; echoed: string }> {
  const socket: TLSSocket = connect({ host: '127.0.0.1', port: Number(new URL(gw.url).port), ca: readFileSync(pki.ca.cert), servername: 'localhost', ALPNProtocols: ['http/1.1'] })
  await once(socket, 'secureConnect')
  let buf = ''
  socket.on('data', (c: Buffer) => (buf += c.toString('latin1')))
  socket.on('error', () => {})
  socket.write('GET /ws HTTP/1.1\r\nHost: localhost\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n')
  await waitFor(() => buf.includes('\r\n\r\n') || socket.destroyed, 'the handshake answer', 5_000).catch(() => {})
  const status = buf.split('\r\n')[0] ?? ''
  const mark = buf.length
  if (status.includes('101')) {
    socket.write('ping-through-tunnel')
    await waitFor(() => buf.length > mark, 'echo', 3_000).catch(() => {})
  }
  socket.destroy()
  return { status, echoed: buf.slice(buf.indexOf('\r\n\r\n') + 4) }
}

describe('WebSocket over TLS', () => {
  for (const http2 of [false, true]) {
    it(`tunnels over https with http2: ${http2} (HTTP/1.1 by ALPN)`, async () => {
      const gw = await startTestGateway({
        server: { tls: { cert: pki.server.cert, key: pki.server.key }, http2 },
        upstreams: [{ name: 'ws', url: `http://127.0.0.1:${(wsServer.address() as AddressInfo).port}` }],
        routes: [{ id: 'ws', path: '/ws', upstream: 'ws', public: true, websocket: true }],
      })
      try {
        const { status, echoed } = await tunnelOver(gw)
        expect(status).toBe('HTTP/1.1 101 Switching Protocols')
        expect(echoed).toBe('ping-through-tunnel')
      } finally {
        await gw.close()
      }
    })
  }
})
