// What a route's target is to the pipeline: a backend it calls `serve` on, whatever it is. The HTTP
// upstream (src/upstream/) is one; the gateway's own endpoints (the JWKS) are another; datasets and
// functions will be more. The pipeline never asks which kind it has.
import type { OutgoingHttpHeaders } from 'node:http'
import { GatewayError } from '../errors/index.ts'
import type { RequestContext } from './context.ts'
import type { CredentialKind, Identity } from './identity.ts'
import type { Caller } from './tool-call.ts'

/** What the pipeline hands a backend for one request, beside the request itself. */
export interface Exchange {
  /** Headers the pipeline computed for this request (X-Bouncer-Assertion) as a flat [name, value, …] list. */
  readonly extraHeaders: string[] | null
  /**
   * Read when the response starts: a draining gateway closes the connection after it. A WebSocket
   * tunnel, an MCP notification stream or an upstream's event stream joins its open tunnels, which
   * an expiry, a revocation, a reload or the drain may close.
   */
  readonly lifecycle: { readonly draining: boolean; readonly openTunnels: OpenTunnels }
  /**
   * Awaited before the response's last bytes leave, with what was served so far (durability: sync
   * commits the audit record there); null when nothing needs to wait.
   */
  readonly beforeEnd: ((served: Served) => Promise<void>) | null
}

/** What serving one request did. The pipeline records it in the request context. */
export interface Served {
  status: number
  upstreamStatus: number | null
  /** Milliseconds from dispatch to the upstream's response headers: of the try that answered, when a request was retried. */
  upstreamMs: number | null
  bytesIn: number
  bytesOut: number
  /** Tries sent upstream (a retry is one more); 0 when nothing was sent. */
  attempts: number
  /** Why the exchange failed: answered as a problem, or, once the response has begun, cut short. */
  error: GatewayError | null
  /**
   * Who a public built-in endpoint found the caller to be, for the audit record (the token
   * endpoint: the user and the agent a token was issued for, with the roles granted; the MCP
   * endpoint: the caller it authenticated).
   */
  caller?: { identity: Identity; credential: CredentialKind | null; roles: readonly string[] }
  /** A dataset's columns masked for this caller, comma-separated (the audit record's `masked`); null otherwise. */
  masked: string | null
  /** Why the backend ended an exchange that did not fail (a tunnel closed at its credential's expiry): the record's detail. */
  note?: string
}

/** WebSocket close codes the gateway sends (RFC 6455 §7.4.1): 1001 going away (the drain), 1008 policy violation. */
export type TunnelCloseCode = 1001 | 1008

/**
 * A response held open past the request that was authenticated and authorized: a WebSocket tunnel
 * (its handshake's request), an MCP notification stream (a 2025-era session's GET stream, a
 * 2026-07-28 `subscriptions/listen`), an upstream's server-sent event stream. Its request, and how
 * the gateway ends it.
 */
export interface OpenTunnel {
  readonly ctx: Readonly<RequestContext>
  /**
   * Whom the backend authenticated itself, on a public built-in route (the MCP endpoint): the
   * registry reads it in place of the pipeline's identity, and asks the route's backend again
   * after a reload (Backend.refusalOf). Absent: the pipeline's (ctx.identity, ctx.credential).
   */
  readonly caller?: Caller
  /** What the records' notes call it ("the MCP notification stream", "the event stream"); absent: a WebSocket tunnel ("the tunnel"). */
  readonly what?: string
  /**
   * Ends it: a tunnel is sent a close frame `code` then both sockets close; a stream ends (the code
   * is a tunnel's only). `note` is the record's detail. Once only.
   */
  close(code: TunnelCloseCode, note: string): void
}

/** The process's open tunnels (gateway/tunnels.ts): only upgrades join, so other requests cost nothing. */
export interface OpenTunnels {
  /** The tunnel joins until the returned function is called (when it closes). */
  add(tunnel: OpenTunnel): () => void
}

export interface Backend {
  /** The upstream's name, for the audit record, metrics and spans; null for the gateway's own endpoints. */
  readonly upstream: string | null
  /**
   * True when the backend puts the context's answerHeaders in the head it writes, over any field of
   * the same name it relays (the hot path: no header is set on the response before it). Otherwise
   * the pipeline sets them on the response before calling serve.
   */
  readonly writesAnswerHeaders?: boolean
  /**
   * A built-in endpoint that authenticates its callers itself (the MCP endpoint, the token
   * exchange's, forward-auth's): its route is public to the stages, so forward-auth cannot decide
   * for a request to it, and refuses to (gateway/pipeline.ts).
   */
  readonly authenticatesCallers?: true
  /**
   * Resolves once the response is complete or the exchange ended, with what was served. A refusal
   * before anything was sent (an upstream at its concurrency cap) may throw instead.
   */
  serve(ctx: Readonly<RequestContext>, exchange: Exchange): Promise<Served>
  /**
   * The refusal `serve` would throw at once if called now (an upstream at its concurrency cap or
   * without a healthy target, a function pool with no free worker); null when it would go on. Asked
   * before `Expect: 100-continue` is answered: a client told "100" uploads its whole body, which a
   * refusal then wasted (nginx and Envoy answer such a request's 503 without reading it).
   */
  refusalNow?(): GatewayError | null
  /**
   * For a response it holds open past its request for a caller it authenticated itself (an MCP
   * notification stream): why this backend, of a runtime a reload swapped in, would refuse that
   * caller now (a sentence's end, lower-case), or null. No I/O: the caller's credential is the one
   * already verified.
   */
  refusalOf?(caller: Caller, ctx: Readonly<RequestContext>): string | null
}

/**
 * The audit status of a request whose client left before any answer began (nginx's 499, which
 * operators already read): no status was sent, and 0 would say nothing.
 */
export const CLIENT_CLOSED_REQUEST = 499

/**
 * Responses whose connection the server itself cut, and why: the client stopped reading
 * (server.send_timeout), or its body did not arrive in time (request_timeout, answered by Node's
 * check with a raw 408). Few, and let go with their responses.
 */
const cutBy = new WeakMap<object, 'send_timeout' | 'request_timeout'>()
export function markCut(res: object, reason: 'send_timeout' | 'request_timeout'): void {
  cutBy.set(res, reason)
}
export function cutReason(res: object): 'send_timeout' | 'request_timeout' | undefined {
  return cutBy.get(res)
}

export function nothingServed(): Served {
  return { status: 0, upstreamStatus: null, upstreamMs: null, bytesIn: 0, bytesOut: 0, attempts: 0, error: null, masked: null }
}

/**
 * A whole answer the gateway writes itself (a built-in endpoint, a dataset's schema): what is served
 * is counted and handed to the pipeline (beforeEnd: the audit record), then sent; HEAD gets the
 * headers alone. `served` may carry more for the record (a dataset's masked columns).
 */
export async function sendWhole(ctx: Readonly<RequestContext>, exchange: Exchange, status: number, headers: OutgoingHttpHeaders, body: string | Uint8Array, served = nothingServed()): Promise<Served> {
  const length = Buffer.byteLength(body)
  served.status = status
  // A client gone while the answer was made gets nothing: the pipeline records its 499.
  if (ctx.res.destroyed) return served
  served.bytesOut = ctx.method === 'HEAD' ? 0 : length
  if (exchange.beforeEnd) await exchange.beforeEnd(served)
  ctx.res.writeHead(status, { ...headers, 'content-length': length, 'x-request-id': ctx.id })
  ctx.res.end(ctx.method === 'HEAD' ? undefined : body)
  return served
}

/** A JSON document the gateway publishes at `path` (key sets, metadata), answered to GET and HEAD. */
export function documentBackend(path: string, headers: OutgoingHttpHeaders & { 'content-type': string; 'cache-control': string }, document: () => unknown): Backend {
  return {
    upstream: null,
    async serve(ctx, exchange) {
      if (ctx.method !== 'GET' && ctx.method !== 'HEAD') {
        throw new GatewayError('method_not_allowed', { detail: `${path} answers GET.`, headers: { allow: 'GET, HEAD' } })
      }
      return sendWhole(ctx, exchange, 200, headers, JSON.stringify(document()))
    },
  }
}

/**
 * Holds a share of what request bodies held whole may take together (server.form_body_total_bytes,
 * gateway/form-budget.ts) for a body of at most `maxBytes`, until the request ends or `release`;
 * 408 request_timeout when none comes in time. A backend that reads a body whole takes one first.
 */
export type HoldBody = (ctx: Readonly<RequestContext>, maxBytes: number) => Promise<{ release(): void }>
