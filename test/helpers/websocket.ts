// The upstream's side of a WebSocket handshake (RFC 6455 §4.2.2), for test servers' 'upgrade' handlers.
import { createHash } from 'node:crypto'
import type { IncomingMessage } from 'node:http'
import type { Duplex } from 'node:stream'
import { startTestGateway, type TestGateway } from './gateway.ts'

/** Answers the handshake with 101 and its Sec-WebSocket-Accept: what follows on `socket` is the tunnel. */
export function acceptWebSocket(req: IncomingMessage, socket: Duplex): void {
  const accept = createHash('sha1').update(`${req.headers['sec-websocket-key']}258EAFA5-E914-47DA-95CA-C5AB0DC85B11`).digest('base64')
  socket.write(`HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: ${accept}\r\n\r\n`)
}

/** Accepts the handshake and echoes every byte of the tunnel back, raw; ends when the gateway's side ends. */
export function echoWebSocket(req: IncomingMessage, socket: Duplex): void {
  acceptWebSocket(req, socket)
  socket.on('data', (chunk: Buffer) => socket.write(chunk))
  socket.on('error', () => {})
  socket.on('end', () => socket.end())
}

/** A client's handshake fields (RFC 6455 §4.1, the RFC's sample key), for requests written raw: after the request line and Host. */
export const HANDSHAKE_FIELDS = 'Connection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n'

/** A gateway in front of `upstreamUrl` with a public WebSocket route at /ws and every other path forwarded; its port, for raw requests. */
export async function startWebSocketGateway(upstreamUrl: string): Promise<{ gateway: TestGateway; port: number }> {
  const gateway = await startTestGateway({
    upstreams: [{ name: 'api', url: upstreamUrl }],
    routes: [
      { id: 'ws', path: '/ws', upstream: 'api', public: true, websocket: true },
      { id: 'all', path: '/*', upstream: 'api', public: true },
    ],
  })
  return { gateway, port: Number(new URL(gateway.url).port) }
}
