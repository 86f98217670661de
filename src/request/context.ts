// Everything known about one request as it moves through the pipeline: what was asked, who
// asked, what was decided, and what happened upstream. The audit record is built from it.
// Every field is set in `createContext` so all contexts share one shape (V8 keeps it monomorphic).
// Only the pipeline (src/gateway/pipeline.ts) writes these fields; the stages return values.
import type { IncomingMessage, ServerResponse } from 'node:http'
import { Http2ServerRequest } from 'node:http2'
import type { Socket } from 'node:net'
import type { Duplex } from 'node:stream'
import type { GatewayError, RecordCode } from '../errors/index.ts'
import { NO_METHOD_OVERRIDES, targetPath, type RequestHeaders } from '../http/index.ts'
import type { RequestSpans, TraceContext } from '../telemetry/index.ts'
import type { CredentialKind, Identity } from './identity.ts'
import { internalRequestOf, type InternalRequest } from './tool-call.ts'

/** The audit record's `decision`: allowed, refused (4xx), or failed (5xx). */
export type Decision = 'allow' | 'deny' | 'error'

/** What the request facts keep of the matched route: its id (the pipeline holds the compiled route). */
export interface RouteRef {
  readonly id: string
}

/** What one request was and became, without its sockets: what the audit record and metrics read. */
export interface RequestFacts {
  /** Epoch milliseconds and a monotonic start for the duration. */
  readonly startedAt: number
  readonly startMono: number
  id: string
  method: string
  /** The canonical path once parsed; the raw target's path until then (for the audit of a bad path), never its query. */
  path: string
  query: string
  headers: RequestHeaders | null
  clientIp: string
  forwardedFor: string
  viaTrustedProxy: boolean
  trace: TraceContext | null
  route: RouteRef | null
  params: Record<string, string>
  rest: string[]
  identity: Identity | null
  /** The kind of credential that proved `identity` (null until authenticated, and on public routes). */
  credential: CredentialKind | null
  roles: readonly string[]
  statement: string | null
  decision: Decision
  code: RecordCode | null
  error: GatewayError | null
  limit: string | null
  upstream: string | null
  upstreamStatus: number | null
  /** Milliseconds from dispatch to the upstream's response headers. */
  upstreamMs: number | null
  /** Tries sent upstream, retries included (the audit record's `attempts`); 0 when none was. */
  attempts: number
  status: number
  bytesIn: number
  bytesOut: number
  /** A dataset's columns masked for this caller (comma-separated), null when none. */
  masked: string | null
  /** An MCP tool call: the tool's name, the SHA-256 of its arguments, and (opt-in) the arguments. */
  tool: string | null
  argsSha256: string | null
  args: string | null
  /** What happened, where no error says it (an approval pending, given or refused). */
  note: string | null
}

export interface RequestContext extends RequestFacts {
  /** The methods a POST's `_method` query parameters name (read once, when the request is routed); none for any other. */
  methodOverrides: readonly string[]
  /**
   * On HTTP/2, node:http2's compatibility objects (Http2ServerRequest, and the listener's subclass
   * of Http2ServerResponse): they offer what the gateway uses of these, under the same names.
   */
  readonly req: IncomingMessage
  readonly res: ServerResponse
  /** An HTTP/2 stream (by ALPN on a TLS listener) rather than an HTTP/1.x request. */
  readonly http2: boolean
  /** The connection came over TLS (X-Forwarded-Proto: https). */
  readonly secure: boolean
  /** The client connection: its TLS socket (an HTTP/2 stream's is its session's), one per connection. */
  readonly connection: Socket
  /** An MCP tool call served in-process (internal-dispatch.ts): its caller and call; undefined for a client's request. Looked up once. */
  readonly internal: InternalRequest | undefined
  /** Set for `Upgrade: websocket` requests: the raw client socket and its first bytes. */
  upgrade: { socket: Duplex; head: Buffer } | null
  /**
   * Fields the gateway adds to this request's answer (the route's RateLimit ones) as a flat
   * [name, value, …] list: held here, not set on the response, so that the HTTP upstream's one
   * writeHead stays on Node's fast path (a header set before writeHead makes it merge every field).
   */
  answerHeaders: string[] | null
  /** `Expect: 100-continue` was answered already (while the body was awaited): not to be sent twice. */
  continued: boolean
  /** The whole body is in the request's buffer, read for a form's `_method` fields (gateway/form-body.ts): an upstream retry may send it again, whatever its size. */
  bodyHeld: boolean
  /**
   * HTTP/2: when (performance.now()) the request body must have arrived whole, request_timeout
   * after the request began; node:http enforces it itself for HTTP/1.1. Null: no such bound here.
   */
  bodyDeadline: number | null
  /** The audit record was already committed (durability: sync commits before the last bytes). */
  audited: boolean
  /** OpenTelemetry spans, only when tracing is configured. */
  spans: RequestSpans | null
}

/**
 * Whether a request came over node:http2 (a stream of a session). Not its version alone: node:http's
 * parser takes "HTTP/2.0" in an HTTP/1 request line too, and such a request read as HTTP/2 threw on
 * the stream it has not (an uncaught exception that ended the gateway: the front-door probe).
 */
export function overHttp2(req: IncomingMessage): boolean {
  return req.httpVersionMajor === 2 && req instanceof Http2ServerRequest
}

export function createContext(req: IncomingMessage, res: ServerResponse, upgrade: RequestContext['upgrade'] = null): RequestContext {
  const http2 = overHttp2(req)
  // An HTTP/2 request's own `socket` is a new proxy per stream; its session's is one per connection.
  const connection = http2 ? ((req as unknown as Http2ServerRequest).stream.session?.socket as Socket | undefined) ?? req.socket : req.socket
  const peer = connection.remoteAddress ?? ''
  return {
    req,
    res,
    http2,
    secure: (connection as Socket & { encrypted?: boolean }).encrypted === true,
    connection,
    internal: internalRequestOf(connection),
    startedAt: Date.now(),
    startMono: performance.now(),
    id: '',
    method: req.method ?? 'GET',
    path: targetPath(req.url ?? ''),
    query: '',
    methodOverrides: NO_METHOD_OVERRIDES,
    headers: null,
    clientIp: peer,
    forwardedFor: peer,
    viaTrustedProxy: false,
    trace: null,
    route: null,
    params: {},
    rest: [],
    identity: null,
    credential: null,
    roles: [],
    statement: null,
    decision: 'allow',
    code: null,
    error: null,
    limit: null,
    answerHeaders: null,
    upstream: null,
    upstreamStatus: null,
    upstreamMs: null,
    attempts: 0,
    status: 0,
    bytesIn: 0,
    bytesOut: 0,
    masked: null,
    tool: null,
    argsSha256: null,
    args: null,
    note: null,
    upgrade,
    continued: false,
    bodyHeld: false,
    bodyDeadline: null,
    audited: false,
    spans: null,
  }
}
