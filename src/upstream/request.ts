// What is sent upstream: the path that was matched and authorized (or its rewrite) under the
// upstream's base path, the headers (SPEC "On the wire": the managed ones removed, then the gateway's
// added), and the body, counted, and cut at max_body_bytes when it is chunked.
import { Transform, type Readable } from 'node:stream'
import type { RoutePattern } from '../config/index.ts'
import { canonicalSegment, foldHeaderName, hasBody, vouchedHost, withoutCookies, type HostAllowList, type ViaEntries } from '../http/index.ts'
import { bodyTimedOut, bodyTooLarge, forwardableAuthorization, type RequestContext, type Served } from '../request/index.ts'
import { traceparentOf } from '../telemetry/index.ts'
import { forwardingLoop, MAX_BOUNCER_HOPS } from './errors.ts'
import type { Upstream } from './pools.ts'
import type { ResponseBufferLimits } from './response-buffer.ts'

/** A route's forwarding settings, fixed when the config is compiled. */
export interface ForwardSettings {
  upstream: Upstream
  rewrite: RoutePattern | null
  forwardAuthorization: boolean
  /** server.hosts: the client Hosts X-Forwarded-Host may repeat. */
  publicHosts: HostAllowList
  maxBodyBytes: number
  /** What of an answer may wait in memory for a slow client (server.response_buffer_bytes). */
  responseBuffer: ResponseBufferLimits
  /**
   * Request headers that are the gateway's credentials (api_keys.header), folded: never sent on,
   * nor a look-alike (X_Api_Key) a folding upstream would read as one.
   */
  withheldHeaders: ReadonlySet<string>
  /** Cookies that are the gateway's credentials (the sign-in session's): taken out of the Cookie header. */
  withheldCookies: ReadonlySet<string>
  /** The route's CORS is the gateway's (routes[].cors): the upstream's own CORS headers are replaced. */
  ownsCors: boolean
  /** server.websocket_idle_timeout (ms) on a WebSocket route: a tunnel idle this long is closed; null for none. */
  websocketIdleMs?: number | null
  /** The gateway's own Via entries (http/managed-headers.ts viaEntries): added, and counted for a loop. */
  via: ViaEntries
}

/** The canonical path that was matched and authorized, or its rewrite, under the upstream's base path. */
export function upstreamPath(ctx: Readonly<RequestContext>, settings: Pick<ForwardSettings, 'upstream' | 'rewrite'>): string {
  const path = settings.rewrite ? fillRewrite(settings.rewrite, ctx.params, ctx.rest) : ctx.path
  const base = settings.upstream.basePath
  return `${base}${path}${ctx.query === '' ? '' : `?${ctx.query}`}`
}

/** Params and rest are already in the canonical form (router captures): they go in as they are. */
function fillRewrite(rewrite: RoutePattern, params: Record<string, string>, rest: readonly string[]): string {
  let out = ''
  for (const segment of rewrite.segments) {
    if (segment.kind === 'literal') out += `/${canonicalSegment(segment.raw)}`
    else if (segment.kind === 'param') out += `/${params[segment.name] ?? ''}`
    else if (rest.length > 0) out += `/${rest.join('/')}`
  }
  return out === '' ? '/' : out
}

/** Headers sent upstream as a flat [name, value, …] list (SPEC "On the wire": removed, then added). */
export function upstreamHeaders(ctx: Readonly<RequestContext>, settings: ForwardSettings, extraHeaders: string[] | null): string[] {
  const inbound = ctx.headers
  const { upstream } = settings
  const names = upstream.headerNames
  const withheld = settings.withheldHeaders
  const out: string[] = []
  if (inbound) {
    const forward = inbound.forward
    let hops = 0
    for (let i = 0; i < forward.length; i += 2) {
      const name = forward[i] as string
      if (name === 'via') hops += ownHops(forward[i + 1] as string, settings.via.mark)
      // Configured headers win: the client cannot set them, nor a look-alike (X_Api_Key) that a
      // folding upstream would read as one.
      if (names.size > 0 || withheld.size > 0) {
        const folded = foldHeaderName(name)
        if (names.has(folded) || withheld.has(folded)) continue
      }
      if (name === 'cookie' && settings.withheldCookies.size > 0) {
        const kept = withoutCookies(forward[i + 1] as string, settings.withheldCookies)
        if (kept !== '') out.push(name, kept)
        continue
      }
      out.push(name, forward[i + 1] as string)
    }
    if (hops >= MAX_BOUNCER_HOPS) throw forwardingLoop(upstream)
    // Rack reads a POST with no Content-Type as a form, its `_method` too, which the gateway reads
    // only in a typed form (http/method-override.ts formBodyOf): such a body is declared for what
    // RFC 9110 §8.3 lets a recipient take it to be, and is streamed on unread.
    if (inbound.contentType === undefined && ctx.method === 'POST' && hasBody(inbound) && !names.has('content-type')) out.push('content-type', 'application/octet-stream')
    if (settings.forwardAuthorization && !names.has('authorization')) {
      const authorization = forwardableAuthorization(ctx.credential, inbound)
      if (authorization !== undefined) out.push('authorization', authorization)
    }
  }
  const proto = ctx.viaTrustedProxy && inbound?.forwardedProto ? inbound.forwardedProto : ctx.secure ? 'https' : 'http'
  // Via after the client's own, if it sent one: the list's last member (http/managed-headers.ts).
  const via = ctx.http2 ? settings.via.http2 : ctx.req.httpVersion === '1.0' ? settings.via.http10 : settings.via.http11
  out.push('via', via, 'x-forwarded-for', ctx.forwardedFor, 'x-forwarded-proto', proto)
  const host = forwardedHost(ctx, settings.publicHosts)
  if (host !== undefined) out.push('x-forwarded-host', host)
  out.push('x-request-id', ctx.id)
  if (ctx.trace) {
    out.push('traceparent', traceparentOf(ctx.trace))
    if (ctx.trace.tracestate) out.push('tracestate', ctx.trace.tracestate)
  }
  for (let i = 0; i < upstream.headers.length; i++) out.push(upstream.headers[i] as string)
  if (extraHeaders) for (const value of extraHeaders) out.push(value)
  return out
}

/** How many of a Via field line's entries this gateway wrote (its `mark`, which no client knows): those of another Bouncer, or a client's look-alike, are not its loop. */
function ownHops(via: string, mark: string): number {
  let hops = 0
  for (let at = via.indexOf(mark); at !== -1; at = via.indexOf(mark, at + mark.length)) hops++
  return hops
}

/** Upstreams build redirects and reset links from X-Forwarded-Host: only a host the gateway vouches for (Host header poisoning). */
function forwardedHost(ctx: Readonly<RequestContext>, publicHosts: HostAllowList): string | undefined {
  const inbound = ctx.headers
  return inbound ? vouchedHost(inbound.host, inbound.forwardedHost || undefined, ctx.viaTrustedProxy, publicHosts) : undefined
}

/** The body to stream upstream, its bytes counted into `served.bytesIn`; null when there is none. */
export function requestBody(ctx: Readonly<RequestContext>, maxBodyBytes: number, served: Served): Readable | null {
  const inbound = ctx.headers
  if (!inbound) return null
  const declared = inbound.contentLength !== undefined && inbound.contentLength > 0
  // An HTTP/2 body always goes through bodyLimit: node:http2 ends a reset stream's body like a whole
  // one, and bounds no body by request_timeout (both checked there). So does an HTTP/1.1 body still
  // arriving (past the 64 KiB window): the request's own 408 at request_timeout, under its id (Node's
  // check answered it raw, under another, and the request was recorded twice: a probe).
  if (inbound.chunked || (declared && (ctx.http2 || !ctx.req.complete))) return ctx.req.pipe(bodyLimit(ctx, served, maxBodyBytes))
  if (declared) {
    // Counted as it streams, so that an upload cut short is recorded as what arrived, by a listener
    // beside undici's own (it reads a stream body with 'data' and resumes it): piped through
    // bodyLimit instead, a 1 KB POST cost 7-9 µs more (bench/README.md "Profiling"). Paused until
    // undici attaches its reader, or the first chunks would go to this listener alone.
    ctx.req.on('data', (chunk: Buffer) => {
      served.bytesIn += chunk.length
    })
    ctx.req.pause()
    return ctx.req
  }
  return null
}

/**
 * Counts a chunked body as it streams and stops it at max_body_bytes (SPEC: 413 also for chunked
 * bodies). A body that ended without arriving whole (an HTTP/2 stream reset mid-upload, which
 * node:http2 ends like any other) fails instead of ending: the upstream must not get a short body
 * with a proper end, and act on a partial upload.
 */
function bodyLimit(ctx: Readonly<RequestContext>, served: Served, maxBodyBytes: number): Transform {
  // The rest of the body must still arrive by request_timeout (a client trickling it after its first
  // window held an upstream pool connection for as long as it liked: node:http2 has no request
  // timeout of its own, node:http's answers raw). The upstream request then fails with 408 request_timeout.
  let deadline: NodeJS.Timeout | null = null
  const counting: Transform = new Transform({
    flush(callback) {
      if (deadline !== null) clearTimeout(deadline)
      callback(ctx.req.complete ? null : new Error('the client stopped sending the request body'))
    },
    destroy(err, callback) {
      if (deadline !== null) clearTimeout(deadline)
      callback(err)
    },
    transform(chunk: Buffer, _encoding, callback) {
      served.bytesIn += chunk.length
      if (served.bytesIn > maxBodyBytes) {
        callback(bodyTooLarge(maxBodyBytes))
        return
      }
      callback(null, chunk)
    },
  })
  if (ctx.bodyDeadline !== null && !ctx.req.complete) {
    deadline = setTimeout(() => {
      if (!ctx.req.complete) counting.destroy(bodyTimedOut())
    }, Math.max(0, ctx.bodyDeadline - performance.now()))
    // Answered (a 502 when the upstream could not be reached): no deadline left to keep.
    ctx.res.once('close', () => clearTimeout(deadline as NodeJS.Timeout))
  }
  // The upstream request reads this stream's errors while it runs; once it has given up (a connect
  // that failed), an error here had no listener and was an uncaught exception that ended the whole
  // gateway (found by a probe: one upload to a dead target, request_timeout later). Its answer has
  // gone already, with the upstream's error.
  counting.on('error', () => {})
  return counting
}
