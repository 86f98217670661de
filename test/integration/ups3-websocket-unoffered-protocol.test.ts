// RFC 6455 §4.1: a client MUST fail the connection when the server's 101 names a subprotocol or an
// extension the client did not offer. The gateway is the upstream's client, yet it tunnelled such a
// 101 and recorded it as served: its own client failed the connection (a browser does), or, with
// no check of its own, framed its messages for a protocol it never agreed to. Refused: 502
// upstream_error, recorded as the error. What the client offered passes.
import { once } from 'node:events'
import { createServer, type Server } from 'node:http'
import type { AddressInfo, Socket } from 'node:net'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { TestGateway } from '../helpers/gateway.ts'
import { metricValue, waitFor } from '../helpers/wait.ts'
import { HANDSHAKE_FIELDS, openRawTunnel, startWebSocketGateway } from '../helpers/websocket.ts'
import { createHash } from 'node:crypto'

let server: Server
let gw: TestGateway
let port: number

beforeAll(async () => {
  server = createServer((_req, res) => res.end())
  // Answers with the fields its query names, whatever the client offered.
  server.on('upgrade', (req, socket: Socket) => {
    socket.on('error', () => {})
    const query = new URL(req.url ?? '/', 'http://x').searchParams
    const accept = createHash('sha1').update(`${req.headers['sec-websocket-key']}258EAFA5-E914-47DA-95CA-C5AB0DC85B11`).digest('base64')
    let fields = ''
    if (query.has('protocol')) fields += `Sec-WebSocket-Protocol: ${query.get('protocol')}\r\n`
    if (query.has('extensions')) fields += `Sec-WebSocket-Extensions: ${query.get('extensions')}\r\n`
    socket.write(`HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: ${accept}\r\n${fields}\r\n`)
  })
  server.listen(0, '127.0.0.1')
  await once(server, 'listening')
  ;({ gateway: gw, port } = await startWebSocketGateway(`http://127.0.0.1:${(server.address() as AddressInfo).port}`))
})
afterAll(async () => {
  await gw.close()
  server.close()
})

const errors = async () => (await metricValue(gw.adminUrl, 'bouncer_requests_total{route="ws",status="502",decision="error"}')) ?? 0

describe('an upstream whose 101 names what the client did not offer', () => {
  for (const [name, query, offered, detail] of [
    ['a subprotocol, none offered', 'protocol=mqtt', '', /subprotocol "mqtt", which the client did not offer/],
    ['another subprotocol', 'protocol=mqtt', 'Sec-WebSocket-Protocol: chat, superchat\r\n', /subprotocol "mqtt"/],
    ['two subprotocols', 'protocol=chat,%20superchat', 'Sec-WebSocket-Protocol: chat, superchat\r\n', /subprotocol "chat, superchat"/],
    ['an extension, none asked for', 'extensions=permessage-deflate', '', /extension "permessage-deflate", which the client did not ask for/],
    ['another extension', 'extensions=x-webkit-deflate-frame', 'Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits\r\n', /extension "x-webkit-deflate-frame"/],
  ] as const) {
    it(`is refused 502 upstream_error: ${name}`, async () => {
      const before = await errors()
      const tunnel = await openRawTunnel(port, `GET /ws?${query} HTTP/1.1\r\nHost: x\r\n${HANDSHAKE_FIELDS}${offered}\r\n`)
      expect(tunnel.status).toBe(502)
      await waitFor(() => tunnel.received().toString().endsWith('}'), 'the problem body')
      const problem = JSON.parse(tunnel.received().toString()) as { code: string; detail: string }
      expect(problem.code).toBe('upstream_error')
      expect(problem.detail).toMatch(detail)
      tunnel.socket.destroy()
      await waitFor(async () => (await errors()) === before + 1, 'the refusal to be recorded as an error')
    })
  }

  it('one that picks what the client offered is tunnelled', async () => {
    const tunnel = await openRawTunnel(port, `GET /ws?protocol=superchat&extensions=permessage-deflate;%20server_no_context_takeover HTTP/1.1\r\nHost: x\r\n${HANDSHAKE_FIELDS}Sec-WebSocket-Protocol: chat, superchat\r\nSec-WebSocket-Extensions: Permessage-Deflate; client_max_window_bits\r\n\r\n`)
    expect(tunnel.status).toBe(101)
    expect(tunnel.head.toLowerCase()).toContain('sec-websocket-protocol: superchat\r\n')
    tunnel.socket.destroy()
  })
})
