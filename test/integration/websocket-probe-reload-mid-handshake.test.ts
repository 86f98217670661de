// Found by an adversarial probe: a reload swapped in while a handshake waited for its upstream's
// 101 decided every open tunnel again, but not that one: it was not open yet. The 101 came, and the
// tunnel opened on the route the reload had taken away (the same for an event stream whose
// upstream answered after the reload), and stayed open for good.
import { once } from 'node:events'
import { createServer, type IncomingMessage, type Server } from 'node:http'
import type { AddressInfo, Socket } from 'node:net'
import { join } from 'node:path'
import { afterAll, beforeAll, expect, it } from 'vitest'
import { waitForAuditRecord } from '../helpers/audit.ts'
import { startTestGateway, type TestGateway } from '../helpers/gateway.ts'
import { waitFor } from '../helpers/wait.ts'
import { CLOSE_1008, echoes, echoWebSocket, HANDSHAKE_FIELDS, openRawTunnel } from '../helpers/websocket.ts'

let wsServer: Server
let gw: TestGateway
let db: string
/** Handshakes the upstream holds: answered (101, then an echo) when the test says. */
const held: { req: IncomingMessage; socket: Socket }[] = []

function config(dir: string, routed = true): Record<string, unknown> {
  return {
    upstreams: [{ name: 'ws', url: `http://127.0.0.1:${(wsServer.address() as AddressInfo).port}` }],
    routes: [{ id: 'live', path: routed ? '/live/*' : '/elsewhere/*', upstream: 'ws', public: true, websocket: true }],
    audit: { sinks: [{ type: 'sqlite', path: db }], spill_dir: join(dir, 'spill'), flush_interval: '20ms' },
  }
}

beforeAll(async () => {
  wsServer = createServer((_req, res) => res.end('not a websocket'))
  wsServer.on('upgrade', (req, socket: Socket) => {
    socket.on('error', () => {})
    held.push({ req, socket })
  })
  wsServer.listen(0, '127.0.0.1')
  await once(wsServer, 'listening')
  gw = await startTestGateway((dir) => {
    db = join(dir, 'audit.db')
    return config(dir)
  })
})
afterAll(async () => {
  await gw?.close()
  wsServer?.close()
})

it('a tunnel whose 101 comes after a reload took its route away is closed 1008, as the open ones are', async () => {
  const port = Number(new URL(gw.url).port)
  const opening = openRawTunnel(port, `GET /live/feed HTTP/1.1\r\nHost: x\r\nX-Request-Id: ws-mid-reload\r\n${HANDSHAKE_FIELDS}\r\n`)
  await waitFor(() => held.length === 1, 'the handshake at the upstream')
  await gw.writeConfig(config(gw.dir, false))
  expect((await gw.reload()).ok).toBe(true)
  const { req, socket } = held[0]!
  echoWebSocket(req, socket)
  const tunnel = await opening
  expect(tunnel.status).toBe(101)
  // Before: it stayed open, and echoed what the client sent.
  await waitFor(() => tunnel.closed(), 'the tunnel to close', 5_000)
  expect(tunnel.received().subarray(0, 4)).toEqual(CLOSE_1008)
  const record = await waitForAuditRecord(db, 'ws-mid-reload')
  expect({ status: record.status, detail: record.detail }).toEqual({ status: 101, detail: 'After a config reload, no route takes GET /live/feed (route_not_found): the gateway closed the tunnel.' })
}, 20_000)

it('one whose route the reload kept stays open', async () => {
  await gw.writeConfig(config(gw.dir))
  expect((await gw.reload()).ok).toBe(true)
  const port = Number(new URL(gw.url).port)
  const opening = openRawTunnel(port, `GET /live/feed HTTP/1.1\r\nHost: x\r\nX-Request-Id: ws-kept\r\n${HANDSHAKE_FIELDS}\r\n`)
  await waitFor(() => held.length === 2, 'the handshake at the upstream')
  await gw.writeConfig({ ...config(gw.dir), server: { websocket_idle_timeout: '1h' } })
  expect((await gw.reload()).ok).toBe(true)
  const { req, socket } = held[1]!
  echoWebSocket(req, socket)
  const tunnel = await opening
  expect(tunnel.status).toBe(101)
  await echoes(tunnel, 'still open')
  expect(tunnel.closed()).toBe(false)
  tunnel.socket.destroy()
}, 20_000)
