// Found by an adversarial probe: the 101 the gateway writes itself was encoded as UTF-8, so an
// upstream's header byte above 0x7F (obs-text, RFC 9110 §5.5: a Latin-1 filename, a cookie value)
// reached the client as two other bytes (0xE9 as 0xC3 0xA9), where any other answer passes it as it
// came; and an upstream's Content-Length on its 101 went to the client, which RFC 9110 §8.6 forbids
// on a 1xx (a client that reads it takes the tunnel's first bytes for a body).
import { createHash } from 'node:crypto'
import { once } from 'node:events'
import { createServer, type Server } from 'node:http'
import type { AddressInfo, Socket } from 'node:net'
import { afterAll, beforeAll, expect, it } from 'vitest'
import type { TestGateway } from '../helpers/gateway.ts'
import { waitFor } from '../helpers/wait.ts'
import { HANDSHAKE_FIELDS, openRawTunnel, startWebSocketGateway } from '../helpers/websocket.ts'

/** `café` in Latin-1, one byte a letter. */
const CAFE = Buffer.from([0x63, 0x61, 0x66, 0xe9])

let server: Server
let gw: TestGateway
let port: number

beforeAll(async () => {
  server = createServer((_req, res) => res.end())
  server.on('upgrade', (req, socket: Socket) => {
    socket.on('error', () => {})
    const accept = createHash('sha1').update(`${req.headers['sec-websocket-key']}258EAFA5-E914-47DA-95CA-C5AB0DC85B11`).digest('base64')
    const length = req.url?.endsWith('?length') === true ? 'Content-Length: 5\r\n' : ''
    socket.write(Buffer.concat([Buffer.from(`HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: ${accept}\r\n${length}X-Name: `), CAFE, Buffer.from('\r\n\r\nhello')]))
  })
  server.listen(0, '127.0.0.1')
  await once(server, 'listening')
  ;({ gateway: gw, port } = await startWebSocketGateway(`http://127.0.0.1:${(server.address() as AddressInfo).port}`))
})
afterAll(async () => {
  await gw.close()
  server.close()
})

it('an upstream\'s header bytes above 0x7F reach the client of a 101 as they came', async () => {
  const tunnel = await openRawTunnel(port, `GET /ws HTTP/1.1\r\nHost: x\r\n${HANDSHAKE_FIELDS}\r\n`)
  expect(tunnel.status).toBe(101)
  const head = Buffer.from(tunnel.head, 'latin1')
  // Before: x-name: caf\xc3\xa9.
  expect(head.includes(Buffer.concat([Buffer.from('x-name: '), CAFE, Buffer.from('\r\n')]))).toBe(true)
  tunnel.socket.destroy()
})

it('an upstream\'s Content-Length on its 101 is not passed on: what follows is the tunnel\'s', async () => {
  const tunnel = await openRawTunnel(port, `GET /ws?length HTTP/1.1\r\nHost: x\r\n${HANDSHAKE_FIELDS}\r\n`)
  expect(tunnel.status).toBe(101)
  // Before: content-length: 5.
  expect(tunnel.head.toLowerCase()).not.toContain('content-length')
  await waitFor(() => tunnel.received().toString() === 'hello', 'the tunnel\'s first bytes')
  tunnel.socket.destroy()
})
