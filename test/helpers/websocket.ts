// The upstream's side of a WebSocket handshake (RFC 6455 §4.2.2), for test servers' 'upgrade' handlers.
import { createHash } from 'node:crypto'
import type { IncomingMessage } from 'node:http'
import type { Duplex } from 'node:stream'

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
