// The upstream's side of a WebSocket handshake (RFC 6455 §4.2.2), for test servers' 'upgrade' handlers,
// and the client's side written raw, for tunnels the gateway is to close.
import { createHash } from 'node:crypto'
import type { IncomingMessage } from 'node:http'
import { connect, type Socket } from 'node:net'
import type { Duplex } from 'node:stream'
import { startTestGateway, type TestGateway } from './gateway.ts'
import { waitFor } from './wait.ts'

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


/** The close frame the gateway ends a tunnel with: status 1008, policy violation (RFC 6455 §5.5.1, §7.4.1). */
export const CLOSE_1008 = Buffer.from([0x88, 0x02, 0x03, 0xf0])

/** The client's side of a handshake written raw, and of the tunnel after it. */
export interface RawTunnel {
  socket: Socket
  /** The answer's head, its blank line included. */
  head: string
  status: number
  /** Every byte the client received after the answer's head. */
  received(): Buffer
  /** When the client saw its socket close (ms since the epoch), or null while it is open. */
  closedAt(): number | null
  closed(): boolean
}

/** `handshake` (a request's head, its blank line included) written on a new connection to 127.0.0.1:`port`; resolves once the answer's head is in. */
export async function openRawTunnel(port: number, handshake: string): Promise<RawTunnel> {
  const socket = connect(port, '127.0.0.1')
  let bytes = Buffer.alloc(0)
  let closedAt: number | null = null
  socket.once('close', () => (closedAt = Date.now()))
  socket.on('data', (c: Buffer) => (bytes = Buffer.concat([bytes, c])))
  socket.on('error', () => {})
  socket.write(handshake)
  await waitFor(() => bytes.includes('\r\n\r\n'), 'the handshake answer')
  const end = bytes.indexOf('\r\n\r\n') + 4
  const head = bytes.subarray(0, end).toString('latin1')
  return {
    socket, head, status: Number(/^HTTP\/1\.1 (\d{3})/.exec(head)?.[1]),
    received: () => bytes.subarray(end), closedAt: () => closedAt, closed: () => closedAt !== null,
  }
}

/** Writes `text` into the tunnel and waits for the echoing upstream to send it back. */
export async function echoes(tunnel: RawTunnel, text: string): Promise<void> {
  tunnel.socket.write(text)
  await waitFor(() => tunnel.received().includes(text), `the echo of ${text}`)
}
