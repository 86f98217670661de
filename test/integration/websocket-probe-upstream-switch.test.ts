// Found by an adversarial probe: an upstream whose 101 switched to another protocol than the
// client asked for (`Upgrade: h2c`) was tunnelled, its client told `upgrade: websocket`; one whose
// 101 named no protocol at all was refused 502 with the detail that 101 "is not an HTTP status".
import { once } from 'node:events'
import { createServer, type Server } from 'node:http'
import type { AddressInfo, Socket } from 'node:net'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { TestGateway } from '../helpers/gateway.ts'
import { waitFor } from '../helpers/wait.ts'
import { HANDSHAKE_FIELDS, openRawTunnel } from '../helpers/websocket.ts'
import { startWebSocketGateway } from '../helpers/websocket.ts'

let server: Server
let gw: TestGateway
let port: number

beforeAll(async () => {
  server = createServer((_req, res) => res.end())
  server.on('upgrade', (req, socket: Socket) => {
    socket.on('error', () => {})
    socket.on('data', (chunk: Buffer) => socket.write(chunk))
    const upgrade = req.url?.endsWith('?h2c') === true ? 'Upgrade: h2c\r\n' : ''
    socket.write(`HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\n${upgrade}\r\n`)
  })
  server.listen(0, '127.0.0.1')
  await once(server, 'listening')
  ;({ gateway: gw, port } = await startWebSocketGateway(`http://127.0.0.1:${(server.address() as AddressInfo).port}`))
})
afterAll(async () => {
  await gw.close()
  server.close()
})

describe('an upstream\'s 101 that does not switch to WebSocket', () => {
  for (const [query, detail] of [
    ['h2c', /switched to "h2c", not to WebSocket/],
    ['none', /101 Switching Protocols without an Upgrade header/],
  ] as const) {
    it(`is refused 502 upstream_error, never tunnelled (${query})`, async () => {
      const tunnel = await openRawTunnel(port, `GET /ws?${query} HTTP/1.1\r\nHost: x\r\n${HANDSHAKE_FIELDS}\r\n`)
      expect(tunnel.status).toBe(502)
      await waitFor(() => tunnel.received().toString().endsWith('}'), 'the problem body')
      const problem = JSON.parse(tunnel.received().toString()) as { code: string; detail: string }
      expect(problem.code).toBe('upstream_error')
      expect(problem.detail).toMatch(detail)
      tunnel.socket.destroy()
    })
  }
})
