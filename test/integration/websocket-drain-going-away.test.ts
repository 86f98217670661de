// A shutdown's drain waited for open WebSocket tunnels to end by themselves, which they do not: it
// held the drain to server.shutdown_timeout, then cut them without a word (the client could not tell
// a drain from a network failure). They are sent a close frame 1001 (going away) at the drain's
// start, for their clients to reconnect to another instance, and the drain goes on without them.
import { once } from 'node:events'
import { createServer, type Server } from 'node:http'
import { connect, type AddressInfo, type Socket } from 'node:net'
import { join } from 'node:path'
import { afterAll, beforeAll, expect, it } from 'vitest'
import { GOING_AWAY_NOTE } from '../../src/gateway/index.ts'
import { waitForAuditRecord } from '../helpers/audit.ts'
import { startTestGateway, type TestGateway } from '../helpers/gateway.ts'
import { waitFor } from '../helpers/wait.ts'
import { echoWebSocket } from '../helpers/websocket.ts'

const CLOSE_1001 = Buffer.from([0x88, 0x02, 0x03, 0xe9])

let wsServer: Server
let gateway: TestGateway
let db: string

beforeAll(async () => {
  wsServer = createServer((_req, res) => res.end('not a websocket'))
  wsServer.on('upgrade', (req, socket: Socket) => {
    echoWebSocket(req, socket)
  })
  wsServer.listen(0, '127.0.0.1')
  await once(wsServer, 'listening')
  gateway = await startTestGateway((dir) => {
    db = join(dir, 'audit.db')
    return {
      server: { shutdown_timeout: '20s' },
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

it('an open tunnel is sent 1001 (going away) at the drain\'s start, and the drain does not wait for it', async () => {
  const client = connect(Number(new URL(gateway.url).port), '127.0.0.1')
  client.on('error', () => {})
  let bytes = Buffer.alloc(0)
  let closed = false
  client.on('data', (c: Buffer) => (bytes = Buffer.concat([bytes, c])))
  client.on('close', () => (closed = true))
  client.write('GET /chat HTTP/1.1\r\nHost: gw\r\nX-Request-Id: ws-drained\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n')
  await waitFor(() => bytes.includes('\r\n\r\n'), 'the 101')
  const head = bytes.indexOf('\r\n\r\n') + 4
  client.write('hello')
  await waitFor(() => bytes.subarray(head).includes('hello'), 'the echo')

  const started = performance.now()
  await gateway.shutdown()
  expect(performance.now() - started).toBeLessThan(5_000) // not server.shutdown_timeout (20 s)
  expect(closed).toBe(true)
  expect(bytes.subarray(head)).toEqual(Buffer.concat([Buffer.from('hello'), CLOSE_1001]))
  const record = await waitForAuditRecord(db, 'ws-drained')
  expect({ status: record.status, detail: record.detail }).toEqual({ status: 101, detail: GOING_AWAY_NOTE })
})
