// One request, top to bottom: admit → match → authenticate → authorize → throttle → forward,
// with the error response and the audit record in one place at the end.
import { randomUUID } from 'node:crypto'
import { accessDenied, evaluateAccess } from '../access/index.ts'
import { asGatewayError, GatewayError, problemBody, sendProblem } from '../errors/index.ts'
import { enforceLimits } from '../limits/index.ts'
import { acceptRequestId, inspectHeaders, parseTarget, type RequestTarget } from '../http/index.ts'
import { clientAddressOf, type RequestContext } from '../request/index.ts'
import { endAuthSpan, endRequestSpans, startAuthSpan, startRequestSpan, startUpstreamSpan, traceContextOf } from '../telemetry/index.ts'
import { forward, forwardUpgrade } from '../upstream/index.ts'
import type { CompiledRoute, Runtime } from './compile.ts'
import { bodyBuffered } from './body-buffer.ts'
import type { GatewayState } from './state.ts'

export async function handle(state: GatewayState, ctx: RequestContext): Promise<void> {
  const rt = state.runtime // in-flight requests keep the runtime they started with
  state.inFlight++
  rt.usage.inFlight++
  try {
    admit(state, rt, ctx)
    const parsed = target(ctx)
    if (ctx.path === JWKS_PATH) return serveJwks(state, ctx)
    const route = match(rt, ctx, parsed)
    if (!route.public) {
      if (state.tracing && ctx.spans) startAuthSpan(state.tracing, ctx.spans)
      const identity = await rt.identity.verify(ctx.headers?.authorization, ctx.query)
      ctx.identity = identity
      const access = evaluateAccess(rt.access, identity, route, ctx.method, ctx.clientIp)
      ctx.roles = access.roles
      ctx.statement = access.decision.statement?.sid ?? null
      if (access.decision.effect !== 'allow') throw accessDenied(access, identity, route.id, ctx.method)
      if (ctx.spans) endAuthSpan(ctx.spans, ctx)
    }
    if (route.limits) {
      const pending = enforceLimits(rt.limiter, ctx, route.limits)
      if (pending) await pending
    }
    // A slow body waits here, on its own connection, not on an upstream one (body-buffer.ts).
    const buffering = bodyBuffered(ctx)
    if (buffering) await buffering
    const options = {
      upstream: route.upstream,
      rewrite: route.rewrite,
      forwardAuthorization: route.forwardAuthorization,
      publicHosts: rt.config.server.hosts,
      maxBodyBytes: rt.config.server.max_body_bytes,
      extraHeaders: assertionHeader(state, ctx, route),
      lifecycle: state,
      beforeEnd: state.audit.durability === 'sync' ? commitAudit(state) : null,
    }
    if (state.tracing && ctx.spans && ctx.trace) ctx.trace.spanId = startUpstreamSpan(state.tracing, ctx.spans, route.upstream.name)
    if (ctx.upgrade) await forwardUpgrade(ctx, options, state.tunnels)
    else await forward(ctx, options)
  } catch (err) {
    await fail(state, ctx, err)
  } finally {
    state.inFlight--
    rt.usage.inFlight--
    if (ctx.spans) endRequestSpans(ctx.spans, ctx)
    state.onRequestDone(ctx)
  }
}

/** Where the keys of X-Bouncer-Assertion are published, on the gateway listener itself. */
const JWKS_PATH = '/.well-known/jwks.json'

function serveJwks(state: GatewayState, ctx: RequestContext): void {
  if (ctx.method !== 'GET' && ctx.method !== 'HEAD') {
    throw new GatewayError('method_not_allowed', { detail: `${JWKS_PATH} answers GET.`, headers: { allow: 'GET, HEAD' } })
  }
  const body = JSON.stringify(state.assertions?.jwks() ?? { keys: [] })
  ctx.status = 200
  ctx.bytesOut = ctx.method === 'HEAD' ? 0 : Buffer.byteLength(body)
  ctx.res.writeHead(200, { 'content-type': 'application/jwk-set+json', 'content-length': Buffer.byteLength(body), 'cache-control': 'max-age=60', 'x-request-id': ctx.id })
  ctx.res.end(ctx.method === 'HEAD' ? undefined : body)
}

/** X-Bouncer-Assertion for upstreams that want one: who is calling, signed by the gateway. */
function assertionHeader(state: GatewayState, ctx: RequestContext, route: CompiledRoute): string[] | null {
  if (!route.upstream.identityAssertion || ctx.identity === null || state.assertions === null) return null
  return ['x-bouncer-assertion', state.assertions.assertion(route.upstream.name, ctx.identity, ctx.roles)]
}

/** Framing, identity of the request (id, trace, client address) and size limits: before any routing. */
function admit(state: GatewayState, rt: Runtime, ctx: RequestContext): void {
  const headers = inspectHeaders(ctx.req.rawHeaders)
  ctx.headers = headers
  if (headers.host === undefined && ctx.req.httpVersion === '1.1') {
    throw new GatewayError('bad_request', { detail: 'An HTTP/1.1 request needs a Host header.' })
  }
  ctx.id = acceptRequestId(headers.requestId) ?? randomUUID()
  ctx.trace = traceContextOf(headers.traceparent, headers.tracestate)
  if (state.tracing) {
    const traced = startRequestSpan(state.tracing, ctx, ctx.trace)
    ctx.spans = traced.spans
    ctx.trace = traced.trace
  }
  const address = clientAddressOf(ctx.req.socket.remoteAddress, headers.forwardedFor, rt.trustedProxies)
  ctx.clientIp = address.clientIp
  ctx.forwardedFor = address.forwardedFor
  ctx.viaTrustedProxy = address.viaTrustedProxy
  if (state.draining) ctx.res.setHeader('connection', 'close')
  const max = rt.config.server.max_body_bytes
  if (headers.contentLength !== undefined && headers.contentLength > max) {
    throw new GatewayError('payload_too_large', { detail: `The request body exceeds ${max} bytes.` })
  }
}

/** The canonical path (bad_path otherwise): what is matched, authorized and forwarded. */
function target(ctx: RequestContext): RequestTarget {
  const parsed = parseTarget(ctx.req.url ?? '', ctx.headers?.host)
  ctx.path = parsed.path
  ctx.query = parsed.query
  return parsed
}

function match(rt: Runtime, ctx: RequestContext, parsed: RequestTarget): CompiledRoute {
  const found = rt.router.match(ctx.method, parsed)
  ctx.route = found.route
  ctx.params = found.params
  ctx.rest = found.rest
  if (ctx.upgrade && !(found.route.websocket && ctx.headers?.upgrade?.toLowerCase() === 'websocket')) {
    throw new GatewayError('bad_request', {
      detail: found.route.websocket
        ? 'Only "Upgrade: websocket" is accepted on this route.'
        : `Route "${found.route.id}" does not allow protocol upgrades.`,
    })
  }
  return found.route
}

/** durability: sync — the record is committed before the response is complete, and only once. */
function commitAudit(state: GatewayState): (ctx: RequestContext) => Promise<void> {
  return async (ctx) => {
    ctx.audited = true
    await state.audit.commit(ctx)
  }
}

async function fail(state: GatewayState, ctx: RequestContext, err: unknown): Promise<void> {
  const error = asGatewayError(err)
  if (ctx.id === '') ctx.id = randomUUID()
  ctx.trace ??= traceContextOf(undefined, undefined)
  ctx.error = error
  ctx.code = error.code
  ctx.status = error.status
  ctx.decision = error.status >= 500 ? 'error' : 'deny'
  if (error.code === 'internal_error') {
    state.logger.error({ err: error.cause, request_id: ctx.id, trace_id: ctx.trace.traceId, route: ctx.route?.id }, 'request failed unexpectedly')
  }
  const { req, res } = ctx
  // A body we did not read is not worth draining: close the connection after the answer.
  if (!req.complete && (ctx.headers?.chunked || (ctx.headers?.contentLength ?? 0) > 0)) {
    if (!res.headersSent) res.setHeader('connection', 'close')
  }
  if (state.audit.durability === 'sync' && !res.headersSent && !ctx.audited) {
    ctx.status = error.status
    ctx.bytesOut += ctx.method === 'HEAD' ? 0 : Buffer.byteLength(problemBody(error, ctx.id))
    await commitAudit(state)(ctx)
    sendProblem(res, error, ctx.id, ctx.method === 'HEAD')
  } else {
    ctx.bytesOut += sendProblem(res, error, ctx.id, ctx.method === 'HEAD')
  }
  if (ctx.upgrade) res.once('finish', () => ctx.upgrade?.socket.end())
}
