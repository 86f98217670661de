// Found by the front-door probe: an HTTP/1.0 request with `Connection: Upgrade` and `Upgrade:
// websocket` was tunnelled, where RFC 9110 §7.8 says a server MUST ignore Upgrade in an HTTP/1.0
// request and RFC 6455 §4.1 that a handshake is HTTP/1.1 at least. An HTTP/1.0 hop in front
// knows no Upgrade: it takes the connection for one that still carries requests, while the gateway
// has made it a tunnel to the upstream, past every check (the desync that WebSocket smuggling
// uses). Node's parser hands such a request over as an upgrade, so it cannot be served as a plain
// GET: it is refused, 400 bad_request, as an Upgrade the route does not take is.
import { once } from 'node:events'
import { createServer, type Server } from 'node:http'
import type { AddressInfo, Socket } from 'node:net'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { startTestGateway, type TestGateway } from '../helpers/gateway.ts'
import { rawRequest } from '../helpers/raw.ts'
import { echoWebSocket, HANDSHAKE_FIELDS } from '../helpers/websocket.ts'

let upstream: Server
let gateway: TestGateway
let port: number
const upgrades: string[] = []

beforeAll(async () => {
  upstream = createServer((_req, res) => res.end('plain'))
  upstream.on('upgrade', (req, socket: Socket) => {
    upgrades.push(req.url ?? '')
    echoWebSocket(req, socket)
  })
  upstream.listen(0, '127.0.0.1')
  await once(upstream, 'listening')
  gateway = await startTestGateway({
    upstreams: [{ name: 'ws', url: `http://127.0.0.1:${(upstream.address() as AddressInfo).port}` }],
    routes: [{ id: 'ws', path: '/*', upstream: 'ws', public: true, websocket: true }],
  })
  port = Number(new URL(gateway.url).port)
})

afterAll(async () => {
  await gateway?.close()
  upstream?.closeAllConnections()
  upstream?.close()
})

describe('a WebSocket handshake in an HTTP/1.0 request', () => {
  it('is refused with 400 bad_request and the connection closed; no tunnel is opened to the upstream', async () => {
    const res = await rawRequest(port, `GET /ten HTTP/1.0\r\nHost: gw\r\n${HANDSHAKE_FIELDS}\r\nGET /smuggled HTTP/1.1\r\nHost: gw\r\n\r\n`, { timeout: 3_000, untilClosed: true })
    expect(res.status).toBe(400)
    expect(JSON.parse(res.body)).toMatchObject({ code: 'bad_request' })
    expect(res.closed).toBe(true)
    expect(upgrades).not.toContain('/ten')
  })

  it('an HTTP/1.1 handshake still opens its tunnel (control)', async () => {
    const res = await rawRequest(port, `GET /eleven HTTP/1.1\r\nHost: gw\r\n${HANDSHAKE_FIELDS}\r\n`, { timeout: 1_000 })
    expect(res.raw.startsWith('HTTP/1.1 101 Switching Protocols')).toBe(true)
    expect(upgrades).toContain('/eleven')
  })
})
