// Forwards one request to its upstream and streams the answer back, both ways, without buffering.
//
// It uses undici's `dispatch` with a handler object: the upstream's chunks go straight into the
// client's socket with backpressure (pause/resume), so memory stays flat however large the body.
// Errors are translated to SPEC codes here, where undici's codes enter our code.
import type { ServerResponse } from 'node:http'
import { Transform, type Readable } from 'node:stream'
import type { Dispatcher } from 'undici'
import type { RoutePattern } from '../config/index.ts'
import { GatewayError } from '../errors/index.ts'
import type { RequestContext } from '../request/index.ts'
import { canonicalSegment, foldHeaderName, HOP_BY_HOP, type HostAllowList } from '../http/index.ts'
import { traceparentOf } from '../telemetry/index.ts'
import type { Upstream } from './pools.ts'

export interface ForwardOptions {
  upstream: Upstream
  rewrite: RoutePattern | null
  forwardAuthorization: boolean
  /** server.hosts: the client Hosts X-Forwarded-Host may repeat. */
  publicHosts: HostAllowList
  maxBodyBytes: number
  /** Extra headers the pipeline computed for this request (e.g. X-Bouncer-Assertion). */
  extraHeaders: string[] | null
  /** Read when the response starts: a draining gateway closes the connection after it. */
  lifecycle: { readonly draining: boolean }
  /**
   * durability: sync — called before the response's last bytes leave: the response is complete
   * for the client only once its audit record is committed.
   */
  beforeEnd: ((ctx: RequestContext) => Promise<void>) | null
}

/** Resolves when the response has been fully sent (or the exchange ended); rejects before any byte was sent. */
export function forward(ctx: RequestContext, options: ForwardOptions): Promise<void> {
  const { upstream } = options
  if (upstream.inFlight >= upstream.maxConcurrent) {
    throw new GatewayError('upstream_saturated', {
      detail: `Upstream "${upstream.name}" already has ${upstream.maxConcurrent} requests in flight.`,
      headers: { 'retry-after': '1' },
    })
  }
  ctx.upstream = upstream.name
  const headers = upstreamHeaders(ctx, options)
  const body = requestBody(ctx, options.maxBodyBytes)
  if (ctx.headers?.expectContinue) ctx.res.writeContinue()

  upstream.inFlight++
  return new Promise<void>((resolve, reject) => {
    const handler = new ForwardHandler(ctx, options, resolve, reject)
    upstream.pool.dispatch(
      { origin: upstream.origin, path: upstreamPath(ctx, options), method: ctx.method, headers, body },
      handler,
    )
  })
}

/** The canonical path that was matched and authorized, or its rewrite, under the upstream's base path. */
export function upstreamPath(ctx: RequestContext, options: Pick<ForwardOptions, 'upstream' | 'rewrite'>): string {
  const path = options.rewrite ? fillRewrite(options.rewrite, ctx.params, ctx.rest) : ctx.path
  const base = options.upstream.basePath
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
export function upstreamHeaders(ctx: RequestContext, options: ForwardOptions): string[] {
  const inbound = ctx.headers
  const { upstream } = options
  const names = upstream.headerNames
  const out: string[] = []
  if (inbound) {
    const forward = inbound.forward
    for (let i = 0; i < forward.length; i += 2) {
      const name = forward[i] as string
      // Configured headers win: the client cannot set them, nor a look-alike (X_Api_Key) that a
      // folding upstream would read as one.
      if (names.size > 0 && names.has(foldHeaderName(name))) continue
      out.push(name, forward[i + 1] as string)
    }
    if (options.forwardAuthorization && inbound.authorization !== undefined && !names.has('authorization')) {
      out.push('authorization', inbound.authorization)
    }
  }
  const proto = ctx.viaTrustedProxy && inbound?.forwardedProto ? inbound.forwardedProto : 'http'
  out.push('x-forwarded-for', ctx.forwardedFor, 'x-forwarded-proto', proto)
  const host = forwardedHost(ctx, options.publicHosts)
  if (host !== undefined) out.push('x-forwarded-host', host)
  out.push('x-request-id', ctx.id)
  if (ctx.trace) {
    out.push('traceparent', traceparentOf(ctx.trace))
    if (ctx.trace.tracestate) out.push('tracestate', ctx.trace.tracestate)
  }
  for (let i = 0; i < upstream.headers.length; i++) out.push(upstream.headers[i] as string)
  if (options.extraHeaders) for (const value of options.extraHeaders) out.push(value)
  return out
}

/**
 * A trusted proxy's X-Forwarded-Host as it sent it; otherwise the client's Host, only when
 * server.hosts names it. Upstreams build redirects and reset links from this header, so a Host the
 * gateway cannot vouch for is not repeated (Host header poisoning).
 */
function forwardedHost(ctx: RequestContext, publicHosts: HostAllowList): string | undefined {
  const inbound = ctx.headers
  if (!inbound) return undefined
  if (ctx.viaTrustedProxy && inbound.forwardedHost) return inbound.forwardedHost
  return inbound.host !== undefined && publicHosts.matches(inbound.host) ? inbound.host : undefined
}

function requestBody(ctx: RequestContext, maxBodyBytes: number): Readable | null {
  const inbound = ctx.headers
  if (!inbound) return null
  if (inbound.chunked) return ctx.req.pipe(bodyLimit(ctx, maxBodyBytes))
  if (inbound.contentLength !== undefined && inbound.contentLength > 0) {
    ctx.bytesIn = inbound.contentLength
    return ctx.req
  }
  return null
}

/** Counts a chunked body as it streams and stops it at max_body_bytes (SPEC: 413 also for chunked bodies). */
function bodyLimit(ctx: RequestContext, maxBodyBytes: number): Transform {
  return new Transform({
    transform(chunk: Buffer, _encoding, callback) {
      ctx.bytesIn += chunk.length
      if (ctx.bytesIn > maxBodyBytes) {
        callback(new GatewayError('payload_too_large', { detail: `The request body exceeds ${maxBodyBytes} bytes.` }))
        return
      }
      callback(null, chunk)
    },
  })
}

/** The upstream's response headers without the hop-by-hop ones (RFC 9110 §7.6.1), with our X-Request-Id. */
export function responseHeaders(headers: Record<string, string | string[] | undefined>, requestId: string): Record<string, string | string[]> {
  const connection = headers.connection
  const named = connection === undefined ? null : new Set(String(connection).toLowerCase().split(',').map((t) => t.trim()))
  const out: Record<string, string | string[]> = {}
  for (const name in headers) {
    const value = headers[name]
    if (value === undefined || HOP_BY_HOP.has(name) || (named !== null && named.has(name))) continue
    out[name] = value
  }
  out['x-request-id'] = requestId
  return out
}

class ForwardHandler implements Dispatcher.DispatchHandler {
  #ctx: RequestContext
  #upstream: Upstream
  #lifecycle: ForwardOptions['lifecycle']
  #beforeEnd: ForwardOptions['beforeEnd']
  /** Sync durability: the head (for a bodiless response) and the last chunk wait for the commit. */
  #heldHead: { status: number; headers: Record<string, string | string[]> } | null = null
  #heldChunk: Buffer | null = null
  #resolve: () => void
  #reject: (err: GatewayError) => void
  #controller: Dispatcher.DispatchController | null = null
  #settled = false
  #onClientClose: () => void
  #dispatchedAt = performance.now()

  constructor(ctx: RequestContext, options: ForwardOptions, resolve: () => void, reject: (err: GatewayError) => void) {
    this.#ctx = ctx
    this.#upstream = options.upstream
    this.#lifecycle = options.lifecycle
    this.#beforeEnd = options.beforeEnd
    this.#resolve = resolve
    this.#reject = reject
    // A client that hangs up mid-exchange: stop the upstream request too.
    this.#onClientClose = () => {
      if (!this.#settled && !ctx.res.writableFinished) this.#controller?.abort(new ClientGone())
    }
    ctx.res.once('close', this.#onClientClose)
  }

  onRequestStart(controller: Dispatcher.DispatchController): void {
    this.#controller = controller
    if (this.#ctx.res.destroyed) controller.abort(new ClientGone())
  }

  onResponseStart(controller: Dispatcher.DispatchController, statusCode: number, headers: Record<string, string | string[] | undefined>): void {
    if (statusCode < 200) return // 1xx interim responses are not relayed
    const ctx = this.#ctx
    const res: ServerResponse = ctx.res
    ctx.upstreamStatus = statusCode
    ctx.upstreamMs = performance.now() - this.#dispatchedAt
    ctx.status = statusCode
    if (res.destroyed) {
      controller.abort(new ClientGone())
      return
    }
    if (this.#lifecycle.draining) res.shouldKeepAlive = false // tell the client to move on
    if (this.#beforeEnd) this.#heldHead = { status: statusCode, headers: responseHeaders(headers, ctx.id) }
    else res.writeHead(statusCode, responseHeaders(headers, ctx.id))
  }

  onResponseData(controller: Dispatcher.DispatchController, chunk: Buffer): void {
    const res = this.#ctx.res
    this.#ctx.bytesOut += chunk.length
    if (this.#beforeEnd) {
      // One chunk behind: the last one is sent only after the audit commit.
      const previous = this.#heldChunk
      this.#heldChunk = chunk
      if (previous === null) return
      this.#writeHeldHead()
      chunk = previous
    }
    if (!res.write(chunk)) {
      controller.pause()
      res.once('drain', () => controller.resume())
    }
  }

  onResponseEnd(): void {
    if (!this.#beforeEnd) {
      this.#ctx.res.end()
      this.#settle()
      this.#resolve()
      return
    }
    this.#beforeEnd(this.#ctx).then(() => {
      this.#writeHeldHead()
      this.#ctx.res.end(this.#heldChunk ?? undefined)
      this.#settle()
      this.#resolve()
    }, (err: unknown) => this.onResponseError(this.#controller as Dispatcher.DispatchController, err as Error))
  }

  #writeHeldHead(): void {
    if (this.#heldHead === null) return
    this.#ctx.res.writeHead(this.#heldHead.status, this.#heldHead.headers)
    this.#heldHead = null
  }

  onResponseError(_controller: Dispatcher.DispatchController, err: Error): void {
    const ctx = this.#ctx
    this.#settle()
    if (err instanceof ClientGone) {
      this.#resolve()
      return
    }
    const mapped = err instanceof GatewayError ? err : translateUndiciError(err, this.#upstream)
    if (ctx.res.headersSent) {
      // The status is already on the wire: cut the connection so the client sees a truncated
      // response, and record what happened.
      ctx.code = mapped.code
      ctx.decision = 'error'
      ctx.error = mapped
      ctx.res.destroy()
      this.#resolve()
      return
    }
    this.#reject(mapped)
  }

  #settle(): void {
    if (this.#settled) return
    this.#settled = true
    this.#upstream.inFlight--
    this.#ctx.res.removeListener('close', this.#onClientClose)
  }
}

class ClientGone extends Error {
  constructor() {
    super('the client closed the connection')
    this.name = 'ClientGone'
  }
}

const UNAVAILABLE = new Set(['ECONNREFUSED', 'ENOTFOUND', 'EHOSTUNREACH', 'ENETUNREACH', 'EAI_AGAIN', 'UND_ERR_CONNECT_TIMEOUT', 'EADDRNOTAVAIL'])

/** undici's error codes → SPEC's 502/504 codes. */
export function translateUndiciError(err: Error, upstream: Upstream): GatewayError {
  const code = (err as { code?: string }).code ?? ''
  if (UNAVAILABLE.has(code)) {
    const why = code === 'UND_ERR_CONNECT_TIMEOUT' ? 'the connection timed out' : `the connection failed (${code})`
    return new GatewayError('upstream_unavailable', { detail: `Upstream "${upstream.name}" is unavailable: ${why}.`, cause: err })
  }
  if (code === 'UND_ERR_HEADERS_TIMEOUT' || code === 'UND_ERR_BODY_TIMEOUT') {
    return new GatewayError('upstream_timeout', { detail: `Upstream "${upstream.name}" did not answer in time.`, cause: err })
  }
  if (code === 'UND_ERR_REQ_CONTENT_LENGTH_MISMATCH') {
    return new GatewayError('bad_request', { detail: 'The request body did not match its Content-Length.', cause: err })
  }
  return new GatewayError('upstream_error', { detail: `Upstream "${upstream.name}" failed mid-exchange.`, cause: err })
}
