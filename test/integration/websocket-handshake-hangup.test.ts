// Found by an adversarial probe (helper "ws"): a client that hung up (FIN) while the upstream was
// still answering its WebSocket handshake had its request recorded with status 0: the request ended
// at the FIN, before its socket had closed, so the record did not read it as a client gone. It is
// now 499, with the reason, as any request whose client left before the answer began.
import { connect } from 'node:net'
import { join } from 'node:path'
import { afterAll, beforeAll, expect, it } from 'vitest'
import { waitForAuditRecord } from '../helpers/audit.ts'
import { startTestGateway, type TestGateway } from '../helpers/gateway.ts'
import { startRawUpstream, type RawUpstream } from '../helpers/raw-upstream.ts'
import { waitFor } from '../helpers/wait.ts'

let upstream: RawUpstream
let gateway: TestGateway
let db: string

beforeAll(async () => {
  upstream = await startRawUpstream(() => {}) // reads the handshake, never answers it
  gateway = await startTestGateway((dir) => {
    db = join(dir, 'audit.db')
    return {
      upstreams: [{ name: 'ws', url: upstream.url }],
      routes: [{ id: 'ws', path: '/*', upstream: 'ws', public: true, websocket: true }],
      audit: { sinks: [{ type: 'sqlite', path: db }], spill_dir: join(dir, 'spill'), flush_interval: '20ms' },
    }
  })
})

afterAll(async () => {
  await gateway?.close()
  await upstream?.close()
})

it('a client that hangs up while the upstream answers its handshake is recorded as gone (499), not status 0', async () => {
  const client = connect(Number(new URL(gateway.url).port), '127.0.0.1')
  client.on('error', () => {})
  client.write('GET /chat HTTP/1.1\r\nHost: gw\r\nX-Request-Id: ws-hangup-1\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n')
  await waitFor(() => upstream.heads.length === 1, 'the handshake at the upstream')
  client.end() // FIN: the client leaves before any answer
  const record = await waitForAuditRecord(db, 'ws-hangup-1')
  expect({ status: record.status, detail: record.detail, route: record.route }).toEqual({
    status: 499,
    detail: 'The client closed the connection before the answer began.',
    route: 'ws',
  })
  await waitFor(() => gateway.state.inFlight === 0, 'the request to end')
})
