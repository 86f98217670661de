// The only place an error becomes a response: a problem+json answer (RFC 9457) on a ServerResponse,
// or, for requests Node's HTTP parser refused before there was one, the same answer written on the
// raw socket. Both carry the same headers and body.
import type { ServerResponse } from 'node:http'
import { constants as http2Constants, type ServerHttp2Stream } from 'node:http2'
import type { Duplex } from 'node:stream'
import { TLSSocket } from 'node:tls'
import { ERROR_CODES, isOAuthCode } from './codes.ts'
import { GatewayError } from './gateway-error.ts'

/**
 * RFC 9457 problem details. `type` is a URN per code: stable, and never dereferenced by clients.
 * The token endpoint's codes take OAuth's shape instead (RFC 6749 §5.2), which OAuth clients read.
 */
export function problemBody(err: GatewayError, requestId: string): string {
  if (isOAuthCode(err.code)) return JSON.stringify({ error: err.code, error_description: oauthErrorText(err.detail), request_id: requestId })
  return JSON.stringify({
    type: `urn:bouncer:error:${err.code}`,
    title: ERROR_CODES[err.code].title,
    status: err.status,
    code: err.code,
    detail: err.detail,
    request_id: requestId,
  })
}

/**
 * `text` in the characters an OAuth error_description may hold (RFC 6749 §5.2, RFC 6750 §3:
 * %x20-21 / %x23-5B / %x5D-7E): quotes and backslashes as ', the RFCs' § and a truncation's … spelt
 * out, anything else outside printable ASCII as ?. The probe found the token endpoint's JSON
 * answers quoting role names and citing sections in characters OAuth clients may refuse.
 */
export function oauthErrorText(text: string): string {
  return text.replaceAll('§', 'section ').replaceAll('…', '...').replace(/["\\]/g, "'").replace(/[^\x20-\x7e]/g, '?')
}

function problemHeaders(err: GatewayError, requestId: string, body: string): Record<string, string | number | string[]> {
  const headers: Record<string, string | number | string[]> = {
    'content-type': isOAuthCode(err.code) ? 'application/json' : 'application/problem+json',
    'content-length': Buffer.byteLength(body),
    'cache-control': 'no-store',
    // The detail can quote what a client sent (a path, a claim): never to be sniffed as HTML.
    'x-content-type-options': 'nosniff',
    'x-request-id': requestId,
  }
  if (err.headers) Object.assign(headers, err.headers)
  return headers
}

/**
 * When the upstream's headers have already been sent the status can no longer change: the
 * connection is cut so the client sees a truncated response instead of a silently corrupted one.
 * Returns the body bytes written.
 */
export function sendProblem(res: ServerResponse, err: GatewayError, requestId: string, headOnly = false): number {
  if (res.headersSent || res.destroyed) {
    cutShort(res)
    return 0
  }
  const body = problemBody(err, requestId)
  res.writeHead(err.status, problemHeaders(err, requestId, body))
  res.end(headOnly ? undefined : body)
  return headOnly ? 0 : Buffer.byteLength(body)
}

/** A whole HTTP/1.1 problem response on a socket that has no ServerResponse; the connection closes after it. */
export function sendRawProblem(socket: Duplex, err: GatewayError, requestId: string): void {
  const body = problemBody(err, requestId)
  let head = `HTTP/1.1 ${err.status} ${ERROR_CODES[err.code].title}\r\n`
  for (const [name, value] of Object.entries(problemHeaders(err, requestId, body))) {
    for (const one of [value].flat()) head += `${name}: ${one}\r\n`
  }
  socket.end(`${head}connection: close\r\n\r\n${body}`)
}

/**
 * Ends an answer whose status is already on the wire, so the client sees it is incomplete: over
 * HTTP/1.1 the connection is cut (a short body, a chunked body without its last chunk); over HTTP/2
 * the stream is reset with INTERNAL_ERROR. Node's compatibility layer resets it with NO_ERROR on
 * destroy(), which RFC 9113 §8.1 keeps for an answer sent whole: a client took the cut body for all of it.
 * An HTTP/1.0 client's answer without a Content-Length ends where the connection does, so a FIN
 * would say "complete" (nginx sends one: the cut CSV was saved as a whole file); it gets a TCP
 * reset instead, which its client reports as an error (curl: "Connection reset by peer").
 */
export function cutShort(res: ServerResponse): void {
  const stream = (res as unknown as { stream?: ServerHttp2Stream }).stream
  if (stream !== undefined) {
    if (!stream.destroyed) stream.close(http2Constants.NGHTTP2_INTERNAL_ERROR)
    return
  }
  const socket = res.socket
  // Over TLS (a TCP reset needs the TCP handle), the missing close_notify is the client's sign.
  if (res.req.httpVersionMinor === 0 && socket !== null && !socket.destroyed && !(socket instanceof TLSSocket)) socket.resetAndDestroy()
  else res.destroy()
}

/** What Node's HTTP parser refused (its 'clientError'), as SPEC's error: the gateway's and the admin listeners' answer. */
export function parserRefusal(err: NodeJS.ErrnoException): GatewayError {
  switch (err.code) {
    case 'HPE_HEADER_OVERFLOW':
      return new GatewayError('headers_too_large', { detail: 'The request headers exceed max_header_bytes.' })
    case 'ERR_HTTP_REQUEST_TIMEOUT':
    case 'ERR_HTTP_HEADERS_TIMEOUT':
      return new GatewayError('request_timeout', { detail: 'The request was not received in time.' })
    default: {
      const reason = err.message.replace(/^Parse Error:\s*/, '')
      return new GatewayError('bad_request', { detail: `Malformed HTTP request: ${reason}.` })
    }
  }
}
