// Found by an adversarial probe: a WebSocket handshake with a body was tunnelled. The body's bytes
// went up the tunnel as WebSocket data, and the upstream was told a different story of them: a
// chunked body lost its Transfer-Encoding (its chunk framing reached the upstream as frames), a
// Content-Length one kept its Content-Length (an upstream reading the body ate the first frame).
import { createServer, type Server } from 'node:http'
import { once } from 'node:events'
import type { AddressInfo, Socket } from 'node:net'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { TestGateway } from '../helpers/gateway.ts'
import { waitFor } from '../helpers/wait.ts'
import { acceptWebSocket, HANDSHAKE_FIELDS, openRawTunnel, startWebSocketGateway } from '../helpers/websocket.ts'

let server: Server
let gw: TestGateway
let port: number
let handshakes = 0

beforeAll(async () => {
  server = createServer((_req, res) => res.end())
  server.on('upgrade', (req, socket: Socket) => {
    handshakes++
    socket.on('error', () => {})
    acceptWebSocket(req, socket)
  })
  server.listen(0, '127.0.0.1')
  await once(server, 'listening')
  ;({ gateway: gw, port } = await startWebSocketGateway(`http://127.0.0.1:${(server.address() as AddressInfo).port}`))
})
afterAll(async () => {
  await gw.close()
  server.close()
})

describe('a WebSocket handshake with a body', () => {
  for (const [kind, fields, body] of [
    ['chunked', 'Transfer-Encoding: chunked\r\n', '5\r\nhello\r\n0\r\n\r\n'],
    ['Content-Length', 'Content-Length: 5\r\n', 'hello'],
  ] as const) {
    it(`is refused 400 bad_request, never tunnelled (${kind})`, async () => {
      const before = handshakes
      const tunnel = await openRawTunnel(port, `GET /ws HTTP/1.1\r\nHost: x\r\n${HANDSHAKE_FIELDS}${fields}\r\n${body}`)
      expect(tunnel.status).toBe(400)
      await waitFor(() => tunnel.received().toString().includes('}'), 'the problem body')
      const problem = JSON.parse(tunnel.received().toString()) as { code: string; detail: string }
      expect(problem.code).toBe('bad_request')
      expect(problem.detail).toMatch(/body/)
      expect(handshakes).toBe(before)
      tunnel.socket.destroy()
    })
  }
  it('a handshake without one still opens its tunnel', async () => {
    const tunnel = await openRawTunnel(port, `GET /ws HTTP/1.1\r\nHost: x\r\n${HANDSHAKE_FIELDS}Content-Length: 0\r\n\r\n`)
    expect(tunnel.status).toBe(101)
    tunnel.socket.destroy()
  })
})
