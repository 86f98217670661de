// Found by an adversarial probe (helper "ws"): a client that sent more than 64 KB before its
// WebSocket handshake was answered (RFC 6455 §4.1: it sends nothing until the 101) had its
// connection cut without a word, and its record said the client had closed it (499). It is now
// refused as the bad request it is: 400 with the reason, recorded so, and the upstream let go.
import { connect } from 'node:net'
import { join } from 'node:path'
import { afterAll, beforeAll, expect, it } from 'vitest'
import { waitForAuditRecord } from '../helpers/audit.ts'
import { startTestGateway, type TestGateway } from '../helpers/gateway.ts'
import { startRawUpstream, type RawUpstream } from '../helpers/raw-upstream.ts'
import { waitFor } from '../helpers/wait.ts'

let upstream: RawUpstream
let upstreamLetGo = false
let gateway: TestGateway
let db: string

beforeAll(async () => {
  upstream = await startRawUpstream((_head, socket) => {
    socket.on('close', () => (upstreamLetGo = true)) // reads the handshake, never answers it
  })
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

it('a client that floods before its handshake is answered gets 400 bad_request, and the record says so', async () => {
  const client = connect(Number(new URL(gateway.url).port), '127.0.0.1')
  client.on('error', () => {})
  let answer = ''
  client.setEncoding('utf8')
  client.on('data', (chunk: string) => (answer += chunk))
  client.write('GET /chat HTTP/1.1\r\nHost: gw\r\nX-Request-Id: ws-early-1\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n')
  await waitFor(() => upstream.heads.length === 1, 'the handshake at the upstream')
  client.write(Buffer.alloc(200_000, 0x81)) // frames, before any 101
  await waitFor(() => /\r\n\r\n\{.*\}$/s.test(answer), 'the answer')
  client.destroy()
  expect(answer.split('\r\n')[0]).toBe('HTTP/1.1 400 Bad Request')
  expect(JSON.parse(answer.slice(answer.indexOf('\r\n\r\n') + 4))).toMatchObject({
    code: 'bad_request',
    detail: 'The client sent more than 65536 bytes before its WebSocket handshake was answered (RFC 6455 §4.1: it sends none until then).',
  })
  const record = await waitForAuditRecord(db, 'ws-early-1')
  expect({ status: record.status, code: record.code }).toEqual({ status: 400, code: 'bad_request' })
  await waitFor(() => upstreamLetGo, 'the upstream connection to be closed')
  await waitFor(() => gateway.state.inFlight === 0, 'the request to end')
})
