// server.websocket_idle_timeout: a tunnel that carries no bytes either way for that long is closed
// (close 1001, going away), and its record says why; bytes either way (the client's, or the
// upstream's alone) keep it open. Without it, a tunnel whose peer vanished (a half-open TCP
// connection) held its max_connections place and its upstream's concurrency for ever.
import { once } from 'node:events'
import { createServer, type Server } from 'node:http'
import { connect, type AddressInfo, type Socket } from 'node:net'
import { join } from 'node:path'
import { afterAll, beforeAll, expect, it } from 'vitest'
import { waitForAuditRecord } from '../helpers/audit.ts'
import { startTestGateway, type TestGateway } from '../helpers/gateway.ts'
import { waitFor } from '../helpers/wait.ts'
import { acceptWebSocket } from '../helpers/websocket.ts'

const CLOSE_1001 = Buffer.from([0x88, 0x02, 0x03, 0xe9])
const IDLE_MS = 1_000

let wsServer: Server
let gateway: TestGateway
let db: string

beforeAll(async () => {
  wsServer = createServer((_req, res) => res.end('not a websocket'))
  wsServer.on('upgrade', (req, socket: Socket) => {
    acceptWebSocket(req, socket)
    socket.on('data', (chunk: Buffer) => {
      // "push": the upstream alone sends, five times, 300 ms apart (longer in all than the idle timeout).
      if (chunk.toString() === 'push') {
        let left = 5
        const timer = setInterval(() => {
          if (socket.destroyed || left-- === 0) return clearInterval(timer)
          socket.write('pushed')
        }, 300)
      } else socket.write(chunk) // raw echo
    })
    socket.on('error', () => {})
    socket.on('end', () => socket.end())
  })
  wsServer.listen(0, '127.0.0.1')
  await once(wsServer, 'listening')
  gateway = await startTestGateway((dir) => {
    db = join(dir, 'audit.db')
    return {
      server: { websocket_idle_timeout: `${IDLE_MS}ms` },
      upstreams: [{ name: 'ws', url: `http://127.0.0.1:${(wsServer.address() as AddressInfo).port}` }],
      routes: [{ id: 'ws', path: '/*', upstream: 'ws', public: true, websocket: true }],
      audit: { sinks: [{ type: 'sqlite', path: db }], spill_dir: join(dir, 'spill'), flush_interval: '20ms' },
    }
  })
})

afterAll(async () => {
  await gateway?.close()
  wsServer?.close()
})

it('a tunnel idle for server.websocket_idle_timeout is closed with 1001; bytes either way keep it open', async () => {
  const client = connect(Number(new URL(gateway.url).port), '127.0.0.1')
  client.on('error', () => {})
  let bytes = Buffer.alloc(0)
  let closedAt: number | null = null
  client.on('data', (c: Buffer) => (bytes = Buffer.concat([bytes, c])))
  client.on('close', () => (closedAt = Date.now()))
  client.write('GET /chat HTTP/1.1\r\nHost: gw\r\nX-Request-Id: ws-idle\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n')
  await waitFor(() => bytes.includes('\r\n\r\n'), 'the 101')
  const head = bytes.indexOf('\r\n\r\n') + 4
  const received = () => bytes.subarray(head).toString('latin1')

  // The client's bytes, then the upstream's alone: each longer in all than the idle timeout.
  for (let i = 0; i < 5; i++) {
    client.write(`ping${i}`)
    await waitFor(() => received().includes(`ping${i}`), `the echo of ping${i}`)
    await new Promise((resolve) => setTimeout(resolve, 300)) // the pace of a chatty client, not a wait for an event
  }
  client.write('push')
  await waitFor(() => received().split('pushed').length - 1 === 5, 'the upstream\'s five pushes')
  expect(closedAt).toBeNull()

  const lastByte = Date.now()
  await waitFor(() => closedAt !== null, 'the idle tunnel closed', 5_000)
  expect((closedAt as unknown as number) - lastByte).toBeGreaterThanOrEqual(IDLE_MS - 400) // the last push came up to 300 ms before
  expect(bytes.subarray(-CLOSE_1001.length)).toEqual(CLOSE_1001)
  const record = await waitForAuditRecord(db, 'ws-idle')
  expect({ status: record.status, detail: record.detail }).toEqual({
    status: 101,
    detail: 'The tunnel carried no bytes either way for 1s (server.websocket_idle_timeout): the gateway closed it (1001 going away).',
  })
})
