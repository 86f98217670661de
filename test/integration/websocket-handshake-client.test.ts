// Clients that misbehave while the upstream is still answering their WebSocket handshake (found by
// an adversarial probe, helper "ws"). One that sent more than 64 KB before the 101 (RFC 6455 §4.1:
// it sends nothing until then) had its connection cut without a word, and its record said the
// client had closed it (499): it is refused as the bad request it is, 400 with the reason, recorded
// so, and the upstream let go. One that hung up (FIN) had its request recorded with status 0: the
// request ended at the FIN, before its socket had closed, so the record did not read it as a client
// gone: it is 499, with the reason, as any request whose client left before the answer began.
import { connect } from 'node:net'
import { join } from 'node:path'
import { afterAll, beforeAll, expect, it } from 'vitest'
import { waitForAuditRecord } from '../helpers/audit.ts'
import { startTestGateway, type TestGateway } from '../helpers/gateway.ts'
import { startRawUpstream, type RawUpstream } from '../helpers/raw-upstream.ts'
import { waitFor } from '../helpers/wait.ts'

let upstream: RawUpstream
let upstreamLetGo = 0
let gateway: TestGateway
let db: string

beforeAll(async () => {
  upstream = await startRawUpstream((_head, socket) => {
    socket.on('close', () => upstreamLetGo++) // reads the handshake, never answers it
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
  const heads = upstream.heads.length
  const letGo = upstreamLetGo
  client.write('GET /chat HTTP/1.1\r\nHost: gw\r\nX-Request-Id: ws-early-1\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n')
  await waitFor(() => upstream.heads.length === heads + 1, 'the handshake at the upstream')
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
  await waitFor(() => upstreamLetGo > letGo, 'the upstream connection to be closed')
  await waitFor(() => gateway.state.inFlight === 0, 'the request to end')
})

it('a client that hangs up while the upstream answers its handshake is recorded as gone (499), not status 0', async () => {
  const client = connect(Number(new URL(gateway.url).port), '127.0.0.1')
  client.on('error', () => {})
  const heads = upstream.heads.length
  client.write('GET /chat HTTP/1.1\r\nHost: gw\r\nX-Request-Id: ws-hangup-1\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n')
  await waitFor(() => upstream.heads.length === heads + 1, 'the handshake at the upstream')
  client.end() // FIN: the client leaves before any answer
  const record = await waitForAuditRecord(db, 'ws-hangup-1')
  expect({ status: record.status, detail: record.detail, route: record.route }).toEqual({
    status: 499,
    detail: 'The client closed the connection before the answer began.',
    route: 'ws',
  })
  await waitFor(() => gateway.state.inFlight === 0, 'the request to end')
})
