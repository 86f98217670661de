// A WebSocket handshake the upstream refuses (403 with a body), whose connection then goes before
// the body is whole. The refusal was piped to the client, and its 'finish' never came: the client's
// connection stayed open for ever, holding the request and its upstream slot (found by a probe).
// Now the client's connection is cut, as any answer broken off is, and the request ends.
import { connect } from 'node:net'
import { afterAll, beforeAll, expect, it } from 'vitest'
import { startTestGateway, type TestGateway } from '../helpers/gateway.ts'
import { startRawUpstream, type RawUpstream } from '../helpers/raw-upstream.ts'
import { waitFor } from '../helpers/wait.ts'

let upstream: RawUpstream
let gateway: TestGateway

beforeAll(async () => {
  upstream = await startRawUpstream((_head, socket) => {
    // 9 of the 100 bytes it declares, then it goes.
    socket.write('HTTP/1.1 403 Forbidden\r\ncontent-type: text/plain\r\ncontent-length: 100\r\n\r\nnot for y', () => socket.destroy())
  })
  gateway = await startTestGateway({
    upstreams: [{ name: 'ws', url: upstream.url, timeout: '2s' }],
    routes: [{ id: 'ws', path: '/*', upstream: 'ws', public: true, websocket: true }],
  })
})

afterAll(async () => {
  await Promise.race([gateway?.close(), new Promise((resolve) => setTimeout(resolve, 3_000))])
  await upstream?.close()
})

it('the client connection ends once the upstream that refused the handshake has gone mid-answer', async () => {
  const socket = connect(Number(new URL(gateway.url).port), '127.0.0.1')
  let text = ''
  let closed = false
  socket.on('data', (chunk: Buffer) => (text += chunk.toString('latin1')))
  socket.on('close', () => (closed = true))
  socket.on('error', () => {})
  socket.write('GET /chat HTTP/1.1\r\nHost: localhost\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n')
  const ended = await waitFor(() => closed, 'the client connection closed', 8_000).then(() => true, () => false)
  socket.destroy()
  expect(text).toMatch(/^HTTP\/1\.1 403/) // the refusal's head reached the client
  expect({ ended, inFlight: gateway.state.inFlight }).toEqual({ ended: true, inFlight: 0 })
}, 20_000)
