// Raw HTTP/1.1 over a socket, for requests no well-behaved client would send.
import { connect } from 'node:net'

export interface RawResponse {
  raw: string
  status: number
  headers: Record<string, string>
  body: string
  /** The server closed the connection (as opposed to keeping it alive). */
  closed: boolean
  timedOut: boolean
}

export function rawRequest(
  port: number,
  data: string | Buffer | Array<string | Buffer>,
  options: { timeout?: number; gapMs?: number; localAddress?: string; untilClosed?: boolean } = {},
  // untilClosed: the answer is read until the server closes (or the timeout), for a test that asserts the close:
  // 20 ms after a complete answer was too short for a loaded CI machine's FIN (hostile-requests, 2026-12-07).
): Promise<RawResponse> {
  const { timeout = 5_000, gapMs = 0, localAddress, untilClosed = false } = options
  return new Promise((resolve) => {
    const socket = connect({ port, host: '127.0.0.1', localAddress })
    let raw = Buffer.alloc(0)
    let done = false
    const finish = (closed: boolean, timedOut = false) => {
      if (done) return
      done = true
      clearTimeout(timer)
      socket.destroy()
      resolve({ ...parse(raw.toString('latin1')), raw: raw.toString('latin1'), closed, timedOut })
    }
    const timer = setTimeout(() => finish(false, true), timeout)
    socket.on('data', (chunk) => {
      raw = Buffer.concat([raw, chunk])
      if (!untilClosed && complete(raw.toString('latin1'))) setTimeout(() => finish(socket.readableEnded), 20)
    })
    socket.on('end', () => finish(true))
    socket.on('close', () => finish(true))
    socket.on('error', () => finish(true))
    const parts = Array.isArray(data) ? data : [data]
    void (async () => {
      for (const part of parts) {
        if (socket.destroyed) return
        socket.write(part)
        if (gapMs > 0) await new Promise((r) => setTimeout(r, gapMs))
      }
    })()
  })
}

/** The final response: interim 1xx responses (100 Continue) are skipped. */
function parse(text: string): Omit<RawResponse, 'raw' | 'closed' | 'timedOut'> {
  const end = text.indexOf('\r\n\r\n')
  if (end === -1) return { status: 0, headers: {}, body: '' }
  if (/^HTTP\/1\.[01] 1\d\d /.test(text) && !text.startsWith('HTTP/1.1 101')) return parse(text.slice(end + 4))
  const [statusLine = '', ...lines] = text.slice(0, end).split('\r\n')
  const headers: Record<string, string> = {}
  for (const line of lines) {
    const colon = line.indexOf(':')
    headers[line.slice(0, colon).trim().toLowerCase()] = line.slice(colon + 1).trim()
  }
  const rest = text.slice(end + 4)
  return { status: Number(statusLine.split(' ')[1]), headers, body: headers['transfer-encoding'] === 'chunked' ? dechunk(rest) : rest }
}

function dechunk(text: string): string {
  let out = ''
  let at = 0
  for (;;) {
    const eol = text.indexOf('\r\n', at)
    if (eol === -1) return out
    const size = parseInt(text.slice(at, eol), 16)
    if (!(size > 0)) return out
    out += text.slice(eol + 2, eol + 2 + size)
    at = eol + 2 + size + 2
  }
}

function complete(text: string): boolean {
  const end = text.indexOf('\r\n\r\n')
  if (end === -1) return false
  if (/^HTTP\/1\.[01] 1\d\d /.test(text) && !text.startsWith('HTTP/1.1 101')) return complete(text.slice(end + 4))
  const { status, headers } = parse(text)
  // RFC 9110 §6.4.1: a 204 or 304 ends with its head, whatever Content-Length says (a 304's is the 200's).
  if (status === 204 || status === 304) return true
  const length = headers['content-length']
  if (length !== undefined) return text.length - end - 4 >= Number(length)
  if (headers['transfer-encoding'] === 'chunked') return text.endsWith('0\r\n\r\n')
  return false
}
