// RFC 6455 §4.1: a client MUST fail the connection when the server's Sec-WebSocket-Accept is not
// the key's digest (or is missing). The gateway is the upstream's client, yet tunnelled such a 101
// to its own client, recorded as a success (101), leaving the client to fail what the gateway had
// counted as served. It is refused: 502 upstream_error with a problem body that says why, recorded
// as the error it is.
import { once } from 'node:events'
import { createServer, type Server } from 'node:http'
import type { AddressInfo, Socket } from 'node:net'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { TestGateway } from '../helpers/gateway.ts'
import { metricValue, waitFor } from '../helpers/wait.ts'
import { acceptWebSocket, HANDSHAKE_FIELDS, openRawTunnel, startWebSocketGateway } from '../helpers/websocket.ts'

let server: Server
let gw: TestGateway
let port: number

beforeAll(async () => {
  server = createServer((_req, res) => res.end())
  server.on('upgrade', (req, socket: Socket) => {
    socket.on('error', () => {})
    socket.on('data', (chunk: Buffer) => socket.write(chunk))
    if (req.url?.endsWith('?right') === true) return acceptWebSocket(req, socket)
    // The digest of another key (the RFC's sample key's is s3pPLMBiTxaQ9kYGzzhZRbK+xOo=), or none.
    const accept = req.url?.endsWith('?wrong') === true ? 'Sec-WebSocket-Accept: HSmrc0sMlYUkAGmm5OPpG2HaGWk=\r\n' : ''
    socket.write(`HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n${accept}\r\n`)
  })
  server.listen(0, '127.0.0.1')
  await once(server, 'listening')
  ;({ gateway: gw, port } = await startWebSocketGateway(`http://127.0.0.1:${(server.address() as AddressInfo).port}`))
})
afterAll(async () => {
  await gw.close()
  server.close()
})

describe('an upstream whose 101 does not prove it read the key', () => {
  for (const [query, detail] of [
    ['wrong', /Sec-WebSocket-Accept that is not its key's digest/],
    ['none', /without a Sec-WebSocket-Accept/],
  ] as const) {
    it(`is refused 502 upstream_error, never tunnelled, and recorded so (${query})`, async () => {
      const errorsBefore = (await metricValue(gw.adminUrl, 'bouncer_requests_total{route="ws",status="502",decision="error"}')) ?? 0
      const tunnel = await openRawTunnel(port, `GET /ws?${query} HTTP/1.1\r\nHost: x\r\n${HANDSHAKE_FIELDS}\r\n`)
      expect(tunnel.status).toBe(502)
      await waitFor(() => tunnel.received().toString().endsWith('}'), 'the problem body')
      const problem = JSON.parse(tunnel.received().toString()) as { code: string; detail: string }
      expect(problem.code).toBe('upstream_error')
      expect(problem.detail).toMatch(detail)
      expect(problem.detail).toMatch(/RFC 6455 §4\.1/)
      tunnel.socket.destroy()
      await waitFor(async () => ((await metricValue(gw.adminUrl, 'bouncer_requests_total{route="ws",status="502",decision="error"}')) ?? 0) === errorsBefore + 1, 'the refusal to be recorded as an error')
      expect(await metricValue(gw.adminUrl, 'bouncer_requests_total{route="ws",status="101",decision="allow"}')).toBeUndefined()
    })
  }

  it('one with the key\'s digest is tunnelled', async () => {
    const tunnel = await openRawTunnel(port, `GET /ws?right HTTP/1.1\r\nHost: x\r\n${HANDSHAKE_FIELDS}\r\n`)
    expect(tunnel.status).toBe(101)
    expect(tunnel.head).toContain('s3pPLMBiTxaQ9kYGzzhZRbK+xOo=')
    tunnel.socket.write('ping')
    await waitFor(() => tunnel.received().toString() === 'ping', 'the echo through the tunnel')
    tunnel.socket.destroy()
  })
})
