// One pass over the request's raw headers (Node's `req.headers` silently drops duplicates of
// Authorization, Host and Content-Length, which is exactly what smuggling and token confusion
// exploit). It refuses ambiguous framing, pulls out what the pipeline needs, and keeps the headers
// that may be forwarded: everything but the headers the gateway manages (hop-by-hop headers,
// headers it writes itself, headers some frameworks obey to change the path or method), including
// their look-alikes that an upstream stack folding `_` into `-` would read as one of them.
import { GatewayError } from '../errors/index.ts'
import { connectionNamed, isManagedVariant, MANAGED_REQUEST_HEADERS, NEVER_HOP_BY_HOP } from '../http/managed-headers.ts'

export interface RequestHeaders {
  authorization: string | undefined
  /** `Connection` names Authorization: the client meant it for the gateway alone, never to be forwarded (RFC 9110 §7.6.1). */
  authorizationHopByHop: boolean
  host: string | undefined
  requestId: string | undefined
  traceparent: string | undefined
  tracestate: string | undefined
  userAgent: string | undefined
  forwardedFor: string | undefined
  forwardedProto: string | undefined
  forwardedHost: string | undefined
  contentLength: number | undefined
  /** Read for a POST's form body (http/method-override.ts); more than one is refused: frameworks differ on which they read. */
  contentType: string | undefined
  chunked: boolean
  upgrade: string | undefined
  expectContinue: boolean
  /** Forwardable headers as a flat [lower-case name, value, …] list. */
  forward: string[]
}

function badRequest(detail: string): GatewayError {
  return new GatewayError('bad_request', { detail })
}

/** What an HTTP/2 request's headers are read with (its `rawHeaders` hold the pseudo-headers too). */
export interface Http2Framing {
  /** DATA frames follow the HEADERS frame (no END_STREAM): a body, of unknown length unless content-length says. */
  bodyFollows: boolean
  /** server.max_header_bytes, counted as HTTP/2 counts a header list (RFC 9113 §6.5.2). */
  maxHeaderBytes: number
}

/** RFC 9113 §8.2.2: HTTP/2 has no connection-specific headers; a request with one is malformed. */
const CONNECTION_SPECIFIC: ReadonlySet<string> = new Set(['connection', 'keep-alive', 'proxy-connection', 'transfer-encoding', 'upgrade'])

/** RFC 9113 §6.5.2: each field counts its name and value and 32 octets of overhead. */
const H2_FIELD_OVERHEAD = 32

export function inspectHeaders(raw: readonly string[], http2: Http2Framing | null = null): RequestHeaders {
  const out: RequestHeaders = {
    authorization: undefined,
    authorizationHopByHop: false,
    host: undefined,
    requestId: undefined,
    traceparent: undefined,
    tracestate: undefined,
    userAgent: undefined,
    forwardedFor: undefined,
    forwardedProto: undefined,
    forwardedHost: undefined,
    contentLength: undefined,
    contentType: undefined,
    chunked: false,
    upgrade: undefined,
    expectContinue: false,
    forward: [],
  }
  let connection: string | undefined
  let authority: string | undefined
  let h2Cookie: string | undefined
  let listBytes = 0
  for (let i = 0; i < raw.length; i += 2) {
    const name = (raw[i] as string).toLowerCase()
    const value = raw[i + 1] as string
    if (http2 !== null) {
      listBytes += name.length + value.length + H2_FIELD_OVERHEAD
      if (name.charCodeAt(0) === 0x3a) { // a pseudo-header (`:path`, `:authority`…): node:http2 read the rest
        if (name === ':authority') authority = value
        continue
      }
      // nghttp2 resets such a stream before the gateway sees it; refused here too, never relied on.
      if (CONNECTION_SPECIFIC.has(name) || (name === 'te' && value.trim().toLowerCase() !== 'trailers')) {
        throw badRequest(`HTTP/2 forbids the connection-specific header ${name} (RFC 9113 §8.2.2)`)
      }
    }
    if (!MANAGED_REQUEST_HEADERS.has(name)) {
      if (isManagedVariant(name)) continue // X-Bouncer-*, X-Forwarded-*, or a look-alike (X_Real_IP)
      if (name === 'content-length') {
        const length = Number(value)
        if (!/^\d+$/.test(value) || (out.contentLength !== undefined && out.contentLength !== length)) {
          throw badRequest('conflicting or invalid Content-Length headers')
        }
        if (out.contentLength !== undefined) continue
        out.contentLength = length
      } else if (name === 'user-agent') {
        out.userAgent = value
      } else if (name === 'content-type') {
        if (out.contentType !== undefined) throw badRequest('more than one Content-Type header')
        out.contentType = value
      } else if (name === 'cookie' && http2 !== null) {
        // RFC 9113 §8.2.3: HTTP/2 may split Cookie into crumbs; an HTTP/1.1 upstream gets them as one header, joined by "; ".
        h2Cookie = h2Cookie === undefined ? value : `${h2Cookie}; ${value}`
        continue
      }
      out.forward.push(name, value)
      continue
    }
    switch (name) {
      case 'authorization':
        if (out.authorization !== undefined) throw badRequest('more than one Authorization header')
        out.authorization = value
        break
      case 'host':
        if (out.host !== undefined) throw badRequest('more than one Host header')
        out.host = value
        break
      case 'transfer-encoding':
        if (out.chunked || value.trim().toLowerCase() !== 'chunked') {
          throw badRequest('only a single "Transfer-Encoding: chunked" is accepted')
        }
        out.chunked = true
        break
      case 'connection':
        connection = connection === undefined ? value : `${connection},${value}`
        break
      case 'upgrade':
        out.upgrade = value
        break
      case 'expect':
        if (value.toLowerCase() !== '100-continue') throw badRequest(`unsupported Expect: ${value}`)
        out.expectContinue = true
        break
      case 'x-request-id':
        out.requestId ??= value
        break
      case 'traceparent':
        // Two traceparent headers are invalid (W3C §3.2): start a fresh trace.
        out.traceparent = out.traceparent === undefined ? value : ''
        break
      case 'tracestate':
        out.tracestate = out.tracestate === undefined ? value : `${out.tracestate},${value}`
        break
      case 'x-forwarded-for':
        out.forwardedFor = out.forwardedFor === undefined ? value : `${out.forwardedFor}, ${value}`
        break
      case 'x-forwarded-proto':
        out.forwardedProto ??= value
        break
      case 'x-forwarded-host':
        out.forwardedHost ??= value
        break
    }
  }
  // RFC 9112 §6.1: a message with both is a smuggling attempt; never guess which one wins.
  if (out.chunked && out.contentLength !== undefined) {
    throw badRequest('a request cannot carry both Content-Length and Transfer-Encoding')
  }
  if (h2Cookie !== undefined) out.forward.push('cookie', h2Cookie)
  if (connection !== undefined) out.authorizationHopByHop = dropConnectionNamed(out.forward, connection)
  if (http2 !== null) readHttp2Framing(out, http2, authority, listBytes)
  return out
}

/** The rules HTTP/2 adds: the header list's size, :authority as the Host, a body without a length. */
function readHttp2Framing(out: RequestHeaders, http2: Http2Framing, authority: string | undefined, listBytes: number): void {
  if (listBytes > http2.maxHeaderBytes) {
    throw new GatewayError('headers_too_large', { detail: 'The request headers exceed max_header_bytes.' })
  }
  if (authority !== undefined) {
    // RFC 9113 §8.3.1: a Host naming another authority makes the request malformed. Two names
    // would let the route be chosen by one and the upstream's X-Forwarded-Host say the other.
    if (out.host !== undefined && out.host.toLowerCase() !== authority.toLowerCase()) {
      throw badRequest(':authority and Host name different hosts')
    }
    out.host = authority
  }
  // No chunked coding in HTTP/2: DATA frames without a content-length are streamed like a chunked
  // body (counted against max_body_bytes, sent upstream chunked).
  if (http2.bodyFollows && out.contentLength === undefined) out.chunked = true
}

/** Removes the headers `Connection` names from the forwardable ones; answers whether it names Authorization (kept apart, never in that list). */
function dropConnectionNamed(forward: string[], connection: string): boolean {
  const named = connectionNamed(connection)
  if (named === null) return false
  for (const name of NEVER_HOP_BY_HOP) if (named.has(name)) throw badRequest(`Connection may not name ${name}: it is meant for every recipient (RFC 9110 §7.6.1)`)
  let write = 0
  for (let read = 0; read < forward.length; read += 2) {
    const name = forward[read] as string
    if (named.has(name)) continue
    forward[write++] = name
    forward[write++] = forward[read + 1] as string
  }
  forward.length = write
  return named.has('authorization')
}

/**
 * Whether the request has a body: a chunked one (an HTTP/2 body without content-length reads as
 * chunked, above), or a declared length over 0. One definition for every reader of a body.
 */
export function hasBody(headers: Pick<RequestHeaders, 'chunked' | 'contentLength'> | null): boolean {
  return headers !== null && (headers.chunked || (headers.contentLength !== undefined && headers.contentLength > 0))
}

const REQUEST_ID = /^[A-Za-z0-9._-]{1,128}$/

/** SPEC: the client's X-Request-Id when it is 1–128 of [A-Za-z0-9._-], else a new UUID. */
export function acceptRequestId(value: string | undefined): string | undefined {
  return value !== undefined && REQUEST_ID.test(value) ? value : undefined
}
