// Raw HTTP/2 frames over TLS, for what node:http2's client refuses to send: connection-specific
// headers, a CONTINUATION flood, PING and SETTINGS floods. Header blocks use HPACK literals without
// indexing or Huffman coding (RFC 7541 §6.2.2), which any decoder reads.
import { once } from 'node:events'
import { connect, type TLSSocket } from 'node:tls'

export const FRAME = { DATA: 0, HEADERS: 1, RST_STREAM: 3, SETTINGS: 4, PING: 6, GOAWAY: 7, WINDOW_UPDATE: 8, CONTINUATION: 9 } as const
export const FLAG = { END_STREAM: 0x1, ACK: 0x1, END_HEADERS: 0x4 } as const

const PREFACE = Buffer.from('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n', 'latin1')

export interface Frame {
  type: number
  flags: number
  stream: number
  payload: Buffer
}

export function frame(type: number, flags: number, stream: number, payload: Buffer = Buffer.alloc(0)): Buffer {
  const head = Buffer.alloc(9)
  head.writeUIntBE(payload.length, 0, 3)
  head[3] = type
  head[4] = flags
  head.writeUInt32BE(stream & 0x7fffffff, 5)
  return Buffer.concat([head, payload])
}

/** RFC 7541 §5.1 with a 7-bit prefix (string lengths, Huffman bit clear). */
function hpackLength(length: number): Buffer {
  if (length < 127) return Buffer.from([length])
  const bytes = [127]
  let rest = length - 127
  while (rest >= 128) {
    bytes.push((rest % 128) + 128)
    rest = Math.floor(rest / 128)
  }
  bytes.push(rest)
  return Buffer.from(bytes)
}

/** A header block of literal fields, new names, never indexed by the peer either. */
export function headerBlock(headers: Array<[string, string]>): Buffer {
  return Buffer.concat(headers.flatMap(([name, value]) => [
    Buffer.from([0x00]), hpackLength(Buffer.byteLength(name)), Buffer.from(name, 'latin1'), hpackLength(Buffer.byteLength(value)), Buffer.from(value, 'latin1'),
  ]))
}

export function requestHeaders(path: string, extra: Array<[string, string]> = []): Array<[string, string]> {
  return [[':method', 'GET'], [':scheme', 'https'], [':path', path], [':authority', 'localhost'], ...extra]
}

export interface RawH2 {
  socket: TLSSocket
  /** Frames received so far (the server's SETTINGS first). */
  frames: Frame[]
  /** Resolves when the server closes the connection. */
  closed: Promise<void>
  send(...frames: Buffer[]): void
  /** Waits until a received frame matches. */
  waitFor(match: (frame: Frame) => boolean, what: string, timeoutMs?: number): Promise<Frame>
}

/**
 * An HTTP/2 connection (ALPN h2) that has sent the preface and an empty SETTINGS. `read: false`
 * reads nothing until `socket.resume()`: a client that never reads what the server sends.
 */
export async function rawH2(url: string, ca: Buffer, options: { read?: boolean } = {}): Promise<RawH2> {
  const { port } = new URL(url)
  const socket = connect({ host: '127.0.0.1', port: Number(port), ca, servername: 'localhost', ALPNProtocols: ['h2'] })
  await once(socket, 'secureConnect')
  const frames: Frame[] = []
  let buffered = Buffer.alloc(0)
  const listeners = new Set<() => void>()
  socket.on('data', (chunk: Buffer) => {
    buffered = Buffer.concat([buffered, chunk])
    while (buffered.length >= 9) {
      const length = buffered.readUIntBE(0, 3)
      if (buffered.length < 9 + length) break
      frames.push({ type: buffered[3] as number, flags: buffered[4] as number, stream: buffered.readUInt32BE(5) & 0x7fffffff, payload: buffered.subarray(9, 9 + length) })
      buffered = buffered.subarray(9 + length)
    }
    for (const listener of listeners) listener()
  })
  if (options.read === false) socket.pause()
  const closed = new Promise<void>((resolve) => {
    socket.once('close', () => resolve())
    socket.on('error', () => {})
  })
  socket.write(Buffer.concat([PREFACE, frame(FRAME.SETTINGS, 0, 0)]))
  return {
    socket,
    frames,
    closed,
    send: (...out) => socket.write(Buffer.concat(out)),
    waitFor(match, what, timeoutMs = 10_000) {
      return new Promise((resolve, reject) => {
        const check = () => {
          const found = frames.find(match)
          if (!found) return
          listeners.delete(check)
          clearTimeout(timer)
          resolve(found)
        }
        const timer = setTimeout(() => {
          listeners.delete(check)
          reject(new Error(`timed out waiting for ${what}; got frame types ${frames.map((f) => f.type).join(',')}`))
        }, timeoutMs)
        listeners.add(check)
        check()
      })
    },
  }
}

/** RST_STREAM's or GOAWAY's error code (RFC 9113 §7: 0x1 PROTOCOL_ERROR, 0xb ENHANCE_YOUR_CALM). */
export function errorCode(frame: Frame): number {
  return frame.type === FRAME.GOAWAY ? frame.payload.readUInt32BE(4) : frame.payload.readUInt32BE(0)
}
