// Found by an adversarial probe (helper "ws"): a WebSocket handshake refused (401 by the gateway,
// 400 on a route without websocket, a 403 the upstream answered) was answered, then its connection
// only half-closed: no timer of node:http's watches a socket once it is upgraded, so a client that
// never closed its side held the connection, and its max_connections place, for ever. A few
// thousand such handshakes locked every other client out. It is now closed after a linger, as the
// parser's raw refusals are (server.ts).
import { connect, type Socket } from 'node:net'
import { afterAll, beforeAll, expect, it } from 'vitest'
import { ANSWER_LINGER_MS } from '../../src/http/linger.ts'
import { startTestGateway, type TestGateway } from '../helpers/gateway.ts'
import { startRawUpstream, type RawUpstream } from '../helpers/raw-upstream.ts'
import { waitFor } from '../helpers/wait.ts'

let upstream: RawUpstream
let gateway: TestGateway

beforeAll(async () => {
  upstream = await startRawUpstream((head, socket) => {
    if (/\r\nupgrade: websocket/i.test(head)) socket.end('HTTP/1.1 403 Forbidden\r\ncontent-length: 2\r\nconnection: close\r\n\r\nno')
    else socket.write('HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok')
  })
  gateway = await startTestGateway({
    server: { max_connections: 3 },
    // An issuer whose keys are never needed: the handshake carries no token (401 at once).
    issuers: [{ name: 'corp', issuer: 'https://idp.example', audiences: ['api'], jwks_uri: 'https://127.0.0.1:9/jwks' }],
    upstreams: [{ name: 'ws', url: upstream.url }],
    routes: [
      { id: 'signed', path: '/signed/*', upstream: 'ws', websocket: true },
      { id: 'plain', path: '/plain/*', upstream: 'ws', public: true },
      { id: 'ws', path: '/*', upstream: 'ws', public: true, websocket: true },
    ],
  })
})

afterAll(async () => {
  await gateway?.close()
  await upstream?.close()
})

/** A client that sends a handshake, reads the answer, and never closes its own side. */
function stubbornHandshake(path: string): { answer: () => string; socket: Socket } {
  const socket = connect({ port: Number(new URL(gateway.url).port), host: '127.0.0.1', allowHalfOpen: true })
  let answer = ''
  socket.on('data', (chunk: Buffer) => (answer += chunk.toString('latin1')))
  socket.on('error', () => {})
  socket.write(`GET ${path} HTTP/1.1\r\nHost: gw\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n`)
  return { answer: () => answer, socket }
}

/** A plain request's status on a connection of its own, or null when it is closed unanswered (max_connections reached). */
function plainRequest(): Promise<number | null> {
  return new Promise((resolve) => {
    const socket = connect(Number(new URL(gateway.url).port), '127.0.0.1')
    let text = ''
    socket.on('data', (chunk: Buffer) => (text += chunk.toString('latin1')))
    socket.on('error', () => {})
    socket.on('close', () => resolve(/^HTTP\/1\.1 (\d{3})/.exec(text) ? Number(RegExp.$1) : null))
    socket.write('GET /plain/x HTTP/1.1\r\nHost: gw\r\nConnection: close\r\n\r\n')
  })
}

it('refused handshakes whose clients never close give their connections back after a linger', async () => {
  const clients = ['/signed/feed', '/plain/feed', '/refused-upstream'].map(stubbornHandshake)
  await waitFor(() => clients.every((c) => c.answer().includes('\r\n\r\n')), 'the three answers')
  expect(clients.map((c) => c.answer().split('\r\n')[0])).toEqual(['HTTP/1.1 401 Unauthorized', 'HTTP/1.1 400 Bad Request', 'HTTP/1.1 403 Forbidden'])
  // The three hold max_connections (3): another client is turned away until the gateway closes them.
  expect(await plainRequest()).toBeNull()
  // Then all three places are free: three clients at once are answered.
  let statuses: Array<number | null> = []
  await waitFor(async () => (statuses = await Promise.all([plainRequest(), plainRequest(), plainRequest()])).every((s) => s !== null), 'three places for other clients', ANSWER_LINGER_MS + 5_000)
  expect(statuses).toEqual([200, 200, 200])
  for (const c of clients) c.socket.destroy()
}, 20_000)
