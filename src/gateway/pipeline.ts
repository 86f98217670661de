// One request, top to bottom: admit → match → CORS (a preflight is answered here) → authenticate →
// authorize → throttle → await the body → serve, then the error answer, and in the `finally` the
// spans, the audit record and the metrics.
// This is the one place that writes the request context: every stage returns what it found.
//
// Forward-auth (/.bouncer/auth) runs the same stages for the request a trusted proxy describes:
// after its own route matched, the context becomes the described request (its method, path,
// route), so the decision, the answer and the audit record are the ones that request would get;
// the built-in backend then answers 200 with the headers to copy instead of forwarding.
//
// durability: sync lives here too: the backend holds the response's last bytes until commitAudit
// has committed the record (the beforeEnd hook), an error answer is sent after its commit, and the
// `finally` queues only records not committed already.
import { randomUUID } from 'node:crypto'
import { accessDenied, evaluateAccess } from '../access/index.ts'
import { unmapIpv4 } from '../config/index.ts'
import { asGatewayError, GatewayError, problemBody, sendProblem } from '../errors/index.ts'
import { acceptRequestId, describedRequest, describesWebSocket, endAfterAnswer, lingerAtClose, foldHeaderName, formBodyOf, hasBody, formMethodOverrides, headerMethodOverrides, inspectHeaders, jsonBodyOf, jsonMethodOverrides, methodOverrides, parseTarget, resetAfterAnswer, targetPath, unreadableJsonCharset, type CorsPolicy, type FormBody, type RequestTarget } from '../http/index.ts'
import { CredentialRefused, rawHeader, type Authenticated, type CredentialInput } from '../identity/index.ts'
import { AddressHeldBack, enforceLimits, type LimitVerdict, type RouteLimits } from '../limits/index.ts'
import { bodyTimedOut, bodyTooLarge, CLIENT_CLOSED_REQUEST, clientAddressOf, cutReason, type Exchange, type RequestContext, type Served } from '../request/index.ts'
import { endAuthSpan, endRequestSpans, startAuthSpan, startRequestSpan, startUpstreamSpan, traceContextOf } from '../telemetry/index.ts'
import { bodyArrival, bodyWindow } from './body-buffer.ts'
import { FORWARD_AUTH_PATH } from './built-ins.ts'
import { contentCoding, decodedBody } from './body-coding.ts'
import type { CompiledRoute, Runtime } from './compile.ts'
import { bodyShareHeld } from './form-budget.ts'
import { readFormBody } from './form-body.ts'
import { checkOverrideRoutes, evaluateWithOverrides, overriddenAccessDenied, type OverrideSource } from './method-override.ts'
import type { RouteMatch } from './router.ts'
import { http2Framing } from './http2.ts'
import type { GatewayState } from './state.ts'

export async function handle(state: GatewayState, ctx: RequestContext): Promise<void> {
  const rt = state.runtime // in-flight requests keep the runtime they started with
  state.inFlight++
  rt.usage.inFlight++
  try {
    admit(state, rt, ctx)
    const matched = match(rt, ctx, ctx.req.url ?? '', ctx.headers?.host)
    const route = matched.forwardAuth ? matchDescribed(rt, ctx) : matched
    // CORS is the browser's business with this gateway, never a forward-auth check's.
    const preflight = !matched.forwardAuth && route.cors !== null ? answerCors(ctx, route.cors) : null
    if (preflight !== null) return await answerPreflight(state, ctx, preflight)
    if (!route.public) await authorize(state, rt, ctx, route, matched.forwardAuth)
    if (matched.forwardAuth) judgeHeaderOverrides(rt, ctx, route)
    if (route.limits) {
      const throttled = throttle(rt, ctx, route.limits)
      if (throttled) await throttled
    }
    // A slow body waits here, on its own connection, not on an upstream one (body-buffer.ts); a
    // form or JSON POST's whole, its `_method` then judged as the query's is (form-body.ts).
    const form = route === matched && ctx.headers !== null ? formBodyOf(ctx.method, ctx.headers) : null
    const json = route === matched && ctx.headers !== null && jsonBodyOf(ctx.method, ctx.headers)
    if (form !== null || json) await judgeBody(rt, ctx, matched, form, json)
    else {
      const body = route === matched ? awaitBody(rt, ctx, matched) : null
      if (body) await body
    }
    await serve(state, rt, ctx, matched, route)
  } catch (err) {
    await respondWithError(state, ctx, err)
  } finally {
    state.inFlight--
    rt.usage.inFlight--
    if (ctx.spans) endRequestSpans(ctx.spans, ctx)
    if (!ctx.audited) state.audit.record(namedToolCaller(ctx)) // queued, never awaited
    state.metrics.observeRequest(ctx, (performance.now() - ctx.startMono) / 1000)
  }
}

const LOWER_CASE = /[a-z]/
// eslint-disable-next-line no-control-regex -- the range above ASCII is the point
const NON_ASCII = /[^\x00-\x7f]/

/** Framing, identity of the request (id, trace, client address) and size limits: before any routing. */
function admit(state: GatewayState, rt: Runtime, ctx: RequestContext): void {
  const headers = inspectHeaders(ctx.req.rawHeaders, ctx.http2 ? http2Framing(ctx.req) : null)
  if (rt.unmanagedCertFields !== null) dropFields(headers.forward, rt.unmanagedCertFields)
  ctx.headers = headers
  // HTTP/2 takes any token as :method, HTTP/1.1's parser only upper-case ones. Methods are
  // case-sensitive (RFC 9110 §9.1): `delete` would pass by a statement on DELETE, and the `*`
  // exclusion of TRACE, yet ASP.NET or Werkzeug upstreams run it as DELETE or TRACE.
  // RFC 9112 §6.1: an HTTP/1.0 message with Transfer-Encoding has faulty framing. An HTTP/1.0
  // proxy in front frames it otherwise (by its length or the connection's end), so whatever follows
  // the chunked body on this connection could be a request smuggled past it: refused, and closed.
  if (headers.chunked && !ctx.http2 && ctx.req.httpVersion === '1.0') {
    ctx.res.shouldKeepAlive = false
    throw new GatewayError('bad_request', { detail: 'An HTTP/1.0 request cannot carry Transfer-Encoding (RFC 9112 §6.1): its framing is faulty, and the connection is closed.' })
  }
  // RFC 9110 §10.1.1 and §15.2: an HTTP/1.0 request's 100-continue is ignored, and its client, which
  // knows no 1xx, is sent none (it read `100 Continue` as its answer). Node ignores it too.
  if (headers.expectContinue && !ctx.http2 && ctx.req.httpVersion === '1.0') headers.expectContinue = false
  if (ctx.http2 && LOWER_CASE.test(ctx.method)) {
    throw new GatewayError('bad_request', { detail: `The method "${ctx.method}" has lower-case letters: methods are case-sensitive, and every method the gateway routes is upper-case.` })
  }
  if (headers.host === undefined && (ctx.http2 || ctx.req.httpVersion === '1.1')) {
    throw new GatewayError('bad_request', { detail: ctx.http2 ? 'An HTTP/2 request needs :authority (or Host).' : 'An HTTP/1.1 request needs a Host header.' })
  }
  ctx.id = acceptRequestId(headers.requestId) ?? randomUUID()
  // node:http's parser takes "HTTP/2.0" (and 0.9) in a request line, where it refuses 1.2 and 3.0:
  // HTTP/2 comes by ALPN (node:http2), and a request line here speaks HTTP/1.0 or 1.1.
  if (!ctx.http2 && ctx.req.httpVersionMajor !== 1) {
    ctx.res.shouldKeepAlive = false
    throw new GatewayError('bad_request', { detail: `Malformed HTTP request: HTTP/${ctx.req.httpVersion} in a request line (this listener reads HTTP/1.0 and HTTP/1.1 in them; HTTP/2 is chosen by TLS ALPN).` })
  }
  ctx.trace = traceContextOf(headers.traceparent, headers.tracestate)
  if (state.tracing) {
    const traced = startRequestSpan(state.tracing, ctx, ctx.trace)
    ctx.spans = traced.spans
    ctx.trace = traced.trace
  }
  const address = clientAddressOf(ctx.connection.remoteAddress, headers.forwardedFor, rt.trustedProxies)
  ctx.clientIp = address.clientIp
  ctx.forwardedFor = address.forwardedFor
  ctx.viaTrustedProxy = address.viaTrustedProxy
  const internal = ctx.internal
  if (internal) {
    // An MCP tool call (gateway/internal-dispatch.ts): the agent's address and the call's facts.
    ctx.clientIp = internal.caller.clientIp
    ctx.forwardedFor = internal.caller.clientIp
    ctx.tool = internal.call.tool
    ctx.argsSha256 = internal.call.argsSha256
    ctx.args = internal.call.args
  }
  // No request is served that could not be recorded (audit.on_spill_full: refuse, the default).
  if (state.audit.refusing) {
    throw new GatewayError('audit_unavailable', {
      detail: 'The audit log cannot take more records: its sink is away and the spill files hold audit.spill_max_bytes. Requests are served again once the sink is back.',
      headers: { 'retry-after': '5' },
    })
  }
  // HTTP/2 has no Connection header: a draining listener sends its sessions GOAWAY instead.
  if (state.draining && !ctx.http2) ctx.res.setHeader('connection', 'close')
  const max = rt.config.server.max_body_bytes
  if (headers.contentLength !== undefined && headers.contentLength > max) {
    throw bodyTooLarge(max)
  }
}

/**
 * A proxy's certificate field under a name of the config's own (server.forwarded_client_cert): read
 * by the gateway, never forwarded, from a trusted proxy or not (a client's copy would pass upstream
 * as the proxy's word), look-alikes that an upstream folding `_` into `-` reads as it included.
 */
function dropFields(forward: string[], names: ReadonlySet<string>): void {
  let kept = 0
  for (let i = 0; i < forward.length; i += 2) {
    if (names.has(foldHeaderName(forward[i] as string))) continue
    forward[kept++] = forward[i] as string
    forward[kept++] = forward[i + 1] as string
  }
  forward.length = kept
}

/**
 * The canonical path (bad_path otherwise), then the first route in file order that takes it (404, 405).
 * `described`: forward-auth's described request, to which no CORS applies: an OPTIONS is matched as one.
 */
function match(rt: Runtime, ctx: RequestContext, requestTarget: string, host: string | undefined, described = false): CompiledRoute {
  // HTTP/1.1 CONNECT never gets here (the listener refuses it); an HTTP/2 one does.
  if (ctx.method === 'CONNECT') throw new GatewayError('bad_path', { detail: 'CONNECT tunnels are not supported.' })
  // Node's HTTP/1 parser refuses raw bytes above 0x7F in a request line; node:http2 (and a header
  // describing a forward-auth request) hands them over as latin1 characters, which the canonical
  // form would encode as UTF-8 a second time (/café sent as bytes reached the upstream as /cafÃ©).
  if ((ctx.http2 || requestTarget !== ctx.req.url) && NON_ASCII.test(requestTarget)) {
    throw new GatewayError('bad_path', { detail: 'A request target is ASCII: send other characters percent-encoded (RFC 3986).' })
  }
  const target = parseTarget(requestTarget, host)
  ctx.path = target.path
  ctx.query = target.query
  // A described preflight matched by the method it names was allowed to a route that takes no
  // OPTIONS, and the proxy forwarded it there; the gateway answers its own preflights, never forwards them.
  const found = (described ? null : preflightMatch(rt, ctx, target)) ?? rt.router.match(ctx.method, target)
  ctx.methodOverrides = methodOverrides(ctx.method, ctx.query)
  if (ctx.methodOverrides.length > 0) checkedOverrides(rt, ctx, found.route, target)
  if (ctx.tool !== null) toolsOwnRoute(ctx, found.route)
  ctx.route = found.route
  ctx.params = found.params
  ctx.rest = found.rest
  // Forward-auth: the check's own upgrade (Caddy sends a handshake's check as a handshake) is the
  // described request's, judged for its route, not the endpoint's (every one was refused); nginx
  // passes only Sec-WebSocket-Key on, and such a handshake had no route check (describedRequest).
  const upgrade = described ? ctx.upgrade !== null || describesWebSocket(ctx.req.rawHeaders) : ctx.upgrade !== null && !found.route.forwardAuth
  // A WebSocket handshake is a GET (RFC 6455 §4.1), and the upstream is sent one: an upgrade with
  // another method would be authorized as that method and tunnel as a GET.
  if (upgrade && ctx.method !== 'GET') throw new GatewayError('bad_request', { detail: `A WebSocket handshake is a GET; this upgrade came as ${ctx.method}.` })
  // RFC 9110 §7.8 and RFC 6455 §4.1: an HTTP/1.0 request's Upgrade is no handshake. A 1.0 hop in
  // front would go on reading requests on a connection the gateway made a tunnel (smuggling). A
  // check makes no tunnel, and nginx asks in HTTP/1.0.
  if (upgrade && !described && ctx.req.httpVersion !== '1.1') throw new GatewayError('bad_request', { detail: `A WebSocket handshake is HTTP/1.1; this upgrade came as HTTP/${ctx.req.httpVersion}.` })
  // Node's parser hands a handshake's body over as the tunnel's first bytes: a chunked one reached
  // the upstream as frames (its Transfer-Encoding dropped), a Content-Length one with its length
  // kept (an upstream reading it as the body ate the first frame). A handshake has none (RFC 6455 §4.1).
  if (ctx.upgrade && hasBody(ctx.headers)) throw new GatewayError('bad_request', { detail: 'A WebSocket handshake has no body; this one declared one (Content-Length or Transfer-Encoding).' })
  if (upgrade && !(found.route.websocket && (ctx.upgrade === null || ctx.headers?.upgrade?.toLowerCase() === 'websocket'))) {
    throw new GatewayError('bad_request', {
      detail: found.route.websocket
        ? 'Only "Upgrade: websocket" is accepted on this route.'
        : `Route "${found.route.id}" does not allow protocol upgrades.`,
    })
  }
  return found.route
}

/** An MCP tool call's request matches its tool's route, or it is refused: its arguments spelled another route's path. */
function toolsOwnRoute(ctx: RequestContext, route: CompiledRoute): void {
  const internal = ctx.internal
  if (internal !== undefined && route.id !== internal.routeId) {
    throw new GatewayError('bad_path', { detail: `The tool's arguments make the path ${ctx.path}, which is route "${route.id}"'s, not the tool's route "${internal.routeId}".` })
  }
}

/**
 * Forward-auth: only a peer in server.forward_auth_peers may ask (403 untrusted_proxy: the answer
 * holds the upstream's credentials), and it names the original request; from here on the context
 * is that request, matched as the gateway would match it (400, 404, 405 alike).
 */
function matchDescribed(rt: Runtime, ctx: RequestContext): CompiledRoute {
  const peer = unmapIpv4(ctx.connection.remoteAddress ?? '')
  if (!rt.forwardAuthPeers.contains(peer)) {
    throw new GatewayError('untrusted_proxy', { detail: `Only the peers in server.forward_auth_peers may ask ${ctx.path}; ${peer || 'this peer'} is not one.` })
  }
  // Envoy's path prefix form; a query on the check alone is no description (Caddy keeps the original's there).
  const pathForm = ctx.rest.length > 0 ? `/${ctx.rest.join('/')}${ctx.query === '' ? '' : `?${ctx.query}`}` : null
  const described = describedRequest(ctx.req.rawHeaders, pathForm, ctx.method)
  ctx.method = described.method
  // Its record is the described request's: one the path rules refuse keeps its path as sent, as on the gateway's own listener.
  ctx.path = targetPath(described.target)
  const route = match(rt, ctx, described.target, described.host, true)
  // The endpoint is public (it checks its peer itself): described, it was allowed unchecked, and a
  // proxy that checks every path (Caddy's snippet) forwarded a client's /.bouncer/auth/… to the
  // upstream. Its own answer to that client, who is no peer of it.
  if (route.forwardAuth) {
    throw new GatewayError('untrusted_proxy', { detail: `A request for ${ctx.path} was described: only the peers in server.forward_auth_peers ask ${FORWARD_AUTH_PATH}, directly, never through a proxy.` })
  }
  // Likewise the MCP endpoint and the token exchange's (public to the stages: they authenticate
  // their callers themselves): described, a POST /mcp with no token was allowed. The gateway
  // answers them itself; no upstream behind a proxy serves them.
  if (route.backend.authenticatesCallers) {
    throw new GatewayError('route_not_found', { detail: `${ctx.path} is the gateway's own endpoint (route "${route.id}"), which authenticates its callers itself: forward-auth does not decide for it. Send its requests to the gateway.` })
  }
  return route
}

/**
 * A CORS preflight (OPTIONS with Origin and Access-Control-Request-Method) asks about the request
 * a page wants to make: it belongs to the route that request would match, when that route has
 * `cors`. Anything else is matched as the OPTIONS request it is.
 */
function preflightMatch(rt: Runtime, ctx: RequestContext, target: RequestTarget): RouteMatch<CompiledRoute> | null {
  if (ctx.method !== 'OPTIONS') return null
  const raw = ctx.req.rawHeaders
  const method = rawHeader(raw, 'access-control-request-method')
  if (method === undefined || rawHeader(raw, 'origin') === undefined) return null
  try {
    const found = rt.router.match(method, target)
    return found.route.cors !== null ? found : null
  } catch {
    return null // no route takes that method here: the OPTIONS request's own 404 or 405 follows
  }
}

/**
 * A POST's query `_method` must name a method its route takes (405 otherwise). Refused here, while
 * the route is matched and before the CORS step, its answer carried no CORS headers on a cors route:
 * the page could not read why (found by the CORS probe). A POST is never a preflight.
 */
function checkedOverrides(rt: Runtime, ctx: RequestContext, route: CompiledRoute, target: RequestTarget): void {
  try {
    checkOverrideRoutes(rt.router, route, target, ctx.methodOverrides)
  } catch (err) {
    if (route.cors !== null) answerCors(ctx, route.cors)
    throw err
  }
}

/**
 * routes[].cors, before any credential: browsers send none with a preflight, and a refusal must
 * carry the CORS headers or the page cannot read it. A preflight's grant (its 204's headers) when
 * the request is one (403 cors_origin_denied thrown for an origin, method or header not listed);
 * null for any other request.
 */
function answerCors(ctx: RequestContext, cors: CorsPolicy): Readonly<Record<string, string>> | null {
  const { res } = ctx
  res.setHeader('vary', 'Origin') // on every answer of the route: caches must keep origins apart
  const raw = ctx.req.rawHeaders
  const origin = rawHeader(raw, 'origin')
  if (origin === undefined) return null
  const method = ctx.method === 'OPTIONS' ? rawHeader(raw, 'access-control-request-method') : undefined
  if (method === undefined) {
    if (cors.allows(origin)) {
      const headers = cors.responseHeaders(origin)
      for (let i = 0; i < headers.length; i += 2) res.setHeader(headers[i] as string, headers[i + 1] as string)
    }
    return null
  }
  const answer = cors.preflight(origin, method, rawHeader(raw, 'access-control-request-headers'))
  if (!answer.ok) throw new GatewayError('cors_origin_denied', { detail: answer.reason })
  return answer.headers
}

/**
 * A preflight's 204. Under durability: sync its record is committed first, as every other answer's
 * (it was queued in the `finally` after the 204 had gone: an answered request with no record yet).
 */
async function answerPreflight(state: GatewayState, ctx: RequestContext, grant: Readonly<Record<string, string>>): Promise<void> {
  ctx.status = 204
  if (state.audit.durability === 'sync') await commitAudit(state, ctx)
  ctx.res.writeHead(204, { ...grant, 'x-request-id': ctx.id })
  ctx.res.end()
}

/** The credential's identity (401/503), its roles and the policies' decision (403). */
async function authorize(state: GatewayState, rt: Runtime, ctx: RequestContext, route: CompiledRoute, forwardAuth: boolean): Promise<void> {
  if (state.tracing && ctx.spans) startAuthSpan(state.tracing, ctx.spans)
  // A forward-auth check is no upgrade itself, but may describe one (its CSRF check is a handshake's).
  const upgrade = ctx.upgrade !== null || (forwardAuth && describesWebSocket(ctx.req.rawHeaders))
  const input = { headers: ctx.headers, rawHeaders: ctx.req.rawHeaders, query: ctx.query, socket: ctx.connection, method: ctx.method, target: ctx.req.url, secure: ctx.secure, viaTrustedProxy: ctx.viaTrustedProxy, forwardAuth, upgrade }
  // An MCP tool call's caller was authenticated at the MCP endpoint; it carries no token of its own.
  const internal = ctx.internal
  const { identity, credential } = internal ? internal.caller : await authenticate(rt, ctx, input, route)
  ctx.identity = identity
  ctx.credential = credential
  // A POST's `_method` parameters are judged too (method-override.ts); every other request as it comes, allocating nothing more.
  const overrides = ctx.methodOverrides
  const judged = overrides.length === 0 ? null : evaluateWithOverrides(rt.access, identity, route, ctx.method, overrides, ctx.clientIp)
  const access = judged === null ? evaluateAccess(rt.access, identity, route, ctx.method, ctx.clientIp) : judged.result
  ctx.roles = access.roles
  ctx.statement = access.decision.statement?.sid ?? null
  if (access.decision.effect !== 'allow') throw judged === null ? accessDenied(access, identity, route.id, ctx.method) : overriddenAccessDenied(judged, identity, route.id, ctx.method)
  if (ctx.spans) endAuthSpan(ctx.spans, ctx)
}

/**
 * The request's credential as an identity (401/503). With auth_failures, an address whose credentials
 * keep failing is refused first (429), its credential unread, and each unproven one is counted.
 */
function authenticate(rt: Runtime, ctx: RequestContext, input: CredentialInput, route: CompiledRoute): Promise<Authenticated> {
  const guard = rt.authFailures
  if (guard === null) return rt.authenticator.authenticate(input, route.accept)
  return guard.guarded(ctx.clientIp, () => rt.authenticator.authenticate(input, route.accept))
}

/** The route's limits (429, 503 limits_unavailable). A promise only when the store answers asynchronously (Redis). */
function throttle(rt: Runtime, ctx: RequestContext, limits: RouteLimits): Promise<void> | undefined {
  const verdict = enforceLimits(rt.limiter, ctx, limits)
  if (verdict instanceof Promise) return verdict.then((v) => applyLimits(ctx, v))
  applyLimits(ctx, verdict)
}

function applyLimits(ctx: RequestContext, verdict: LimitVerdict): void {
  // On every response of the route, the refusal's included (IETF RateLimit headers): held for the
  // answer's head (RequestContext.answerHeaders), which serve or respondWithError puts them in.
  if (verdict.policy !== null || verdict.state !== null) {
    const held: string[] = []
    if (verdict.policy !== null) held.push('ratelimit-policy', verdict.policy)
    if (verdict.state !== null) held.push('ratelimit', verdict.state)
    ctx.answerHeaders = held
  }
  ctx.limit = verdict.limit
  if (verdict.error) throw verdict.error
}

/** Null when there is nothing to wait for (no body, or enough of it is here): the common case costs no promise. */
function awaitBody(rt: Runtime, ctx: RequestContext, route: CompiledRoute): Promise<void> | null {
  const headers = ctx.headers
  if (headers === null || ctx.upgrade !== null) return null
  // Both protocols, and whether or not the window is here already: the request's own 408, under its
  // id and in its one record (HTTP/1.1 once had only Node's check, whose raw 408 made a second
  // record: a probe). Node's stays, a little later, for requests not yet here (server.ts).
  ctx.bodyDeadline = ctx.startMono + rt.config.server.request_timeout
  const window = bodyWindow(ctx.req, headers, rt.config.server.max_body_bytes)
  if (window === 0) return null
  askForBody(ctx, route)
  return bodyArrival(ctx.req, window, ctx.bodyDeadline === null ? null : ctx.bodyDeadline - performance.now())
}

/** `Expect: 100-continue`: the client is told to send its body, once, unless the backend would refuse now. */
function askForBody(ctx: RequestContext, route: CompiledRoute): void {
  if (!ctx.headers?.expectContinue || ctx.req.destroyed) return
  // A backend that would refuse now (at its cap) refuses before the client is told to send: its
  // body is never uploaded for nothing (RFC 9110 §10.1.1 lets a server answer without reading it).
  const refusal = route.backend.refusalNow?.()
  if (refusal) throw refusal
  // The client sends nothing until told to; the backend must not tell it twice.
  ctx.res.writeContinue()
  ctx.continued = true
}

/**
 * A form or JSON POST (http/method-override.ts formBodyOf, jsonBodyOf): its body read whole,
 * bounded (form-body.ts), then the methods its `_method` names routed and authorized as a query's
 * are (a POST's query's already were, when it was matched): the route must take them, the
 * policies allow them. A type that is a form's and JSON's at once is read both ways.
 */
async function judgeBody(rt: Runtime, ctx: RequestContext, route: CompiledRoute, form: FormBody | null, json: boolean): Promise<void> {
  const coding = contentCoding(ctx.req.rawHeaders, form !== null ? 'A form body' : 'A JSON body')
  const charset = json ? unreadableJsonCharset(ctx.headers?.contentType ?? '') : null
  if (charset !== null) {
    throw new GatewayError('bad_request', { detail: `A JSON body is not accepted in charset "${charset}": the gateway reads its _method in UTF-8, and body-parser decodes this charset first.` })
  }
  ctx.bodyDeadline = ctx.startMono + rt.config.server.request_timeout
  await bodyShareHeld(ctx, rt.config.server.max_body_bytes, rt.config.server.form_body_total_bytes)
  askForBody(ctx, route)
  const counted = { bytesIn: 0 }
  let body: Buffer
  try {
    body = await readFormBody(ctx.req, ctx.http2, { maxBytes: rt.config.server.max_body_bytes, deadline: ctx.bodyDeadline, counted })
  } finally {
    ctx.bytesIn = counted.bytesIn // the record of a refusal says what arrived; a forwarded body's is counted again as it goes
  }
  ctx.bodyHeld = true
  // With a Content-Encoding, the bytes as they came (Laravel, Rails) and decoded (body-parser): both read (body-coding.ts).
  const decoded = coding === null ? null : await decodedBody(body, coding, rt.config.server.max_body_bytes)
  for (const bytes of decoded === null ? [body] : [body, decoded]) {
    if (form !== null) judgeOverrides(rt, ctx, route, formMethodOverrides(ctx.method, form, bytes), 'form', ctx.req.url ?? '')
    if (json) judgeOverrides(rt, ctx, route, jsonMethodOverrides(ctx.method, bytes), 'json', ctx.req.url ?? '')
  }
}

/**
 * Forward-auth: a described POST's method-override headers (X-HTTP-Method-Override…), which the
 * gateway removes where it forwards itself but a proxy forwards as the client sent them: decided
 * before it was allowed as a bare POST, and Symfony or Laravel behind nginx ran the DELETE a policy
 * denied (a probe). The check carries no body, so its `_method` fields stay undecided (docs/forward-auth.md).
 */
function judgeHeaderOverrides(rt: Runtime, ctx: RequestContext, route: CompiledRoute): void {
  const named = headerMethodOverrides(ctx.method, ctx.req.rawHeaders)
  if (named.length > 0) judgeOverrides(rt, ctx, route, named, 'header', ctx.query === '' ? ctx.path : `${ctx.path}?${ctx.query}`)
}

/** The methods a body or the override headers named, but those decided already, routed at `target` and authorized (404, 405, 400, 403). */
function judgeOverrides(rt: Runtime, ctx: RequestContext, route: CompiledRoute, named: readonly string[], source: OverrideSource, target: string): void {
  const overrides = named.filter((method) => !ctx.methodOverrides.includes(method))
  if (overrides.length === 0) return
  ctx.methodOverrides = [...ctx.methodOverrides, ...overrides]
  checkOverrideRoutes(rt.router, route, parseTarget(target, ctx.headers?.host), overrides, source)
  const identity = ctx.identity
  if (route.public || identity === null) return
  const judged = evaluateWithOverrides(rt.access, identity, route, ctx.method, overrides, ctx.clientIp)
  if (judged.result.decision.effect === 'allow') return
  ctx.roles = judged.result.roles
  ctx.statement = judged.result.decision.statement?.sid ?? null
  throw overriddenAccessDenied(judged, identity, route.id, ctx.method, source)
}

/**
 * The matched route's backend answers: the upstream (502/503/504 codes), or a built-in endpoint.
 * `decided` is the route the stages decided for: the matched one, or forward-auth's described one,
 * whose assertion and upstream headers are then the answer's.
 */
async function serve(state: GatewayState, rt: Runtime, ctx: RequestContext, matched: CompiledRoute, decided: CompiledRoute): Promise<void> {
  const { backend } = matched
  const exchange: Exchange = {
    extraHeaders: matched === decided ? assertionHeader(rt, ctx, decided) : decisionHeaders(rt, ctx, decided),
    lifecycle: state,
    beforeEnd: state.audit.durability === 'sync' ? (served) => commitAudit(state, recordServed(ctx, backend.upstream, served)) : null,
  }
  if (backend.writesAnswerHeaders !== true) setAnswerHeaders(ctx)
  if (state.tracing && ctx.spans && ctx.trace && backend.upstream !== null) {
    ctx.trace.spanId = startUpstreamSpan(state.tracing, ctx.spans, backend.upstream)
  }
  const served = await backend.serve(ctx, exchange)
  recordServed(ctx, backend.upstream, served)
  const error = served.error
  if (error === null) {
    if (stillSending(ctx)) await sentOrGone(ctx.res)
    if (ctx.res.destroyed) recordCutShort(state, ctx) // the common case reads one flag
    // durability: sync — a WebSocket tunnel's record counts what crossed it, so it is whole only
    // once the tunnel has closed: committed then, not queued behind the request (nothing is left to hold).
    // A record lost on its way is queued again (`finally`): the tunnel has closed, there is nothing to refuse.
    if (ctx.upgrade !== null && exchange.beforeEnd !== null && !ctx.audited) await commitAudit(state, ctx).catch(() => {})
    return
  }
  if (!ctx.res.headersSent) throw error
  // The status is already on the wire and the backend cut the connection: record what happened.
  ctx.error = error
  ctx.code = error.code
  ctx.decision = 'error'
}

const SHUTDOWN_CUT = 'The gateway was shutting down: it cut the answer at server.shutdown_timeout.'
const CLIENT_LEFT = 'The client closed the connection before the answer ended.'

/**
 * An answer ended by its backend whose bytes still wait for the client (a function's whole answer,
 * an upstream's held in the response buffer): its record waits for them, so that a client that
 * leaves meanwhile is recorded so. A record committed already (durability: sync) cannot say it. The
 * common answer is in the kernel's hands when its backend returns: nothing to wait for.
 */
function stillSending(ctx: RequestContext): boolean {
  const { res } = ctx
  return !ctx.audited && ctx.upgrade === null && ctx.internal === undefined && res.headersSent && !res.destroyed && !res.writableFinished && res.writableLength > 0
}

/** Resolves once the answer has gone whole ('finish') or its connection has gone ('close'): send_timeout and the shutdown bound the wait. */
function sentOrGone(res: RequestContext['res']): Promise<void> {
  return new Promise((resolve) => {
    const done = () => {
      res.removeListener('finish', done)
      res.removeListener('close', done)
      resolve()
    }
    res.once('finish', done)
    res.once('close', done)
  })
}

/** A response whose connection went before it was complete: why, for its record. */
function recordCutShort(state: GatewayState, ctx: RequestContext): void {
  // The upstream's head may have come and been held (until its first body byte): nothing was sent.
  // An upgrade's 101 goes to the socket, not through res (whose headersSent stays false). A tool
  // call's answer reaches its agent only whole (internal-dispatch.ts): one cut short reached no one,
  // unless the dispatch cut it for a reason of its own (ctx.error: an answer too large).
  const nothingSent = ctx.upgrade !== null ? ctx.status === 0
    : ctx.internal !== undefined ? !ctx.res.writableFinished && ctx.error === null
      : !ctx.res.headersSent
  const cut = cutReason(ctx.res)
  if (nothingSent) {
    // Node's request_timeout check answered the raw 408 and cut the connection (server.ts).
    if (cut === 'request_timeout') throw bodyTimedOut()
    ctx.status = CLIENT_CLOSED_REQUEST
    ctx.note ??= state.cutAtShutdown ? SHUTDOWN_CUT : 'The client closed the connection before the answer began.'
  } else if (cut === 'send_timeout') {
    ctx.note = 'The client stopped reading: the gateway cut the answer at server.send_timeout.'
  } else if (state.cutAtShutdown) {
    // The record read as a whole answer (200, no word) while the client got part of it.
    ctx.note = SHUTDOWN_CUT
  } else if (ctx.upgrade === null && !ctx.res.writableFinished) {
    // Read as a whole answer too (its status, allow, no word), with bytes_out what was written (an
    // adversarial probe). A held stream the gateway cut itself keeps the reason it was cut for.
    ctx.note ??= CLIENT_LEFT
  }
}

function recordServed(ctx: RequestContext, upstream: string | null, served: Served): RequestContext {
  if (served.caller) {
    ctx.identity = served.caller.identity
    ctx.credential = served.caller.credential
    ctx.roles = served.caller.roles
  }
  ctx.upstream = upstream
  ctx.status = served.status
  ctx.upstreamStatus = served.upstreamStatus
  ctx.upstreamMs = served.upstreamMs
  ctx.attempts = served.attempts
  ctx.bytesIn = served.bytesIn
  ctx.bytesOut = served.bytesOut
  ctx.masked = served.masked
  if (served.note !== undefined) ctx.note = served.note
  return ctx
}

/** Forward-auth's answer: what the gateway would have added to the request upstream, for the proxy to copy. */
function decisionHeaders(rt: Runtime, ctx: RequestContext, decided: CompiledRoute): string[] | null {
  const assertion = assertionHeader(rt, ctx, decided)
  const configured = decided.upstreamHeaders?.() ?? []
  if (configured.length === 0) return assertion
  return assertion === null ? [...configured] : [...assertion, ...configured]
}

/** X-Bouncer-Assertion for upstreams that want one: who is calling, signed by the request's own runtime's signer. */
function assertionHeader(rt: Runtime, ctx: RequestContext, route: CompiledRoute): string[] | null {
  const signer = rt.signing.assertions
  if (route.assertionAudience === null || ctx.identity === null || signer === null) return null
  return ['x-bouncer-assertion', signer.assertion(route.assertionAudience, ctx.identity, ctx.roles)]
}

/** The answer's held fields (RequestContext.answerHeaders) set on the response, for an answer not written by the HTTP upstream's head. */
function setAnswerHeaders(ctx: RequestContext): void {
  const held = ctx.answerHeaders
  if (held === null || ctx.res.headersSent) return
  for (let i = 0; i < held.length; i += 2) ctx.res.setHeader(held[i] as string, held[i + 1] as string)
}

/**
 * durability: sync — the record is committed before the response is complete, and only once. One
 * the audit log lost rejects (503 audit_unavailable): the answer becomes that refusal, whose own
 * record is then committed or queued like any other.
 */
function commitAudit(state: GatewayState, ctx: RequestContext): Promise<void> {
  ctx.audited = true
  return state.audit.commit(namedToolCaller(ctx)).catch((err: unknown) => {
    ctx.audited = false
    throw err
  })
}

/**
 * An MCP tool call's record names the agent the MCP endpoint authenticated, also where the pipeline
 * never authorized it: a call refused first (its arguments made a bad path, or another route's) or
 * a public route's. Both were audited as nobody's. Only the record: a public route stays anonymous
 * to its backend, as over HTTP.
 */
function namedToolCaller(ctx: RequestContext): RequestContext {
  const internal = ctx.internal
  if (internal && ctx.identity === null) {
    ctx.identity = internal.caller.identity
    ctx.credential = internal.caller.credential
    ctx.roles = internal.caller.roles
  }
  return ctx
}

async function respondWithError(state: GatewayState, ctx: RequestContext, err: unknown): Promise<void> {
  const error = asGatewayError(err)
  // Cut by the shutdown before any answer began, then failed as the closes ran under it (the
  // upstream's pool closed, the function's worker stopped): the client got nothing, and the record
  // said 502 "failed mid-exchange" (an adversarial probe). It says the cut, as a request cut at the
  // deadline says it. Every connection is cut once cutAtShutdown is set (shutdown.ts, in the same
  // turn), before its 'close' has marked the response destroyed (a tool call's answer is not a
  // connection: its own flag says).
  if (state.cutAtShutdown && !ctx.res.headersSent && error.status >= 500 && (ctx.internal === undefined || ctx.res.destroyed)) {
    ctx.status = CLIENT_CLOSED_REQUEST
    ctx.note = SHUTDOWN_CUT
    return
  }
  // A genuine credential refused (a revoked or expired API key): the record names whose it is.
  if (err instanceof CredentialRefused && ctx.identity === null) {
    ctx.identity = err.caller.identity
    ctx.credential = err.caller.credential
  }
  // auth_failures' 429 (the route's own limits name theirs in applyLimits; an MCP endpoint's comes here).
  if (err instanceof AddressHeldBack) ctx.limit = err.limit
  if (ctx.id === '') ctx.id = randomUUID()
  ctx.trace ??= traceContextOf(undefined, undefined)
  ctx.error = error
  ctx.code = error.code
  // A backend that failed after its status went out (a dataset's stream, a sync record lost at the
  // end) is cut short below: the record keeps the status the client was sent.
  ctx.status = ctx.res.headersSent ? ctx.res.statusCode : error.status
  ctx.decision = error.status >= 500 || ctx.res.headersSent ? 'error' : 'deny'
  if (error.code === 'internal_error') {
    state.logger.error({ err: error.cause, request_id: ctx.id, trace_id: ctx.trace.traceId, route: ctx.route?.id }, 'request failed unexpectedly')
  }
  const { req, res } = ctx
  // A body we did not read is not worth draining: close the connection after the answer, once the
  // client has had the time to read it (lingerAtClose). On HTTP/2 the stream alone is reset once
  // the answer is out (below): its other streams go on.
  if (!ctx.http2 && !req.complete && hasBody(ctx.headers)) {
    if (!res.headersSent) res.setHeader('connection', 'close')
    if (ctx.internal === undefined) lingerAtClose(req.socket, req)
  }
  setAnswerHeaders(ctx)
  // The asking request's own method, not ctx.method: forward-auth's is the described request's, and
  // Caddy and Traefik ask with a GET for a HEAD. Answered bodiless, that GET's problem announced a
  // Content-Length it never sent: the proxy waited for it, or read the next answer as it (a probe).
  const headOnly = req.method === 'HEAD'
  if (state.audit.durability === 'sync' && !res.headersSent && !ctx.audited) {
    const bytesBefore = ctx.bytesOut
    const bodyBytes = (answer: GatewayError) => (headOnly ? 0 : Buffer.byteLength(problemBody(answer, ctx.id)))
    ctx.bytesOut = bytesBefore + bodyBytes(error)
    const unrecorded = await commitAudit(state, ctx).then(() => null, asGatewayError)
    // This answer's record was lost too: the refusal goes out unrecorded, and is queued (`finally`).
    const answer = unrecorded ?? error
    if (unrecorded !== null) {
      ctx.error = unrecorded
      ctx.code = unrecorded.code
      ctx.status = unrecorded.status
      ctx.decision = 'error'
      ctx.bytesOut = bytesBefore + bodyBytes(unrecorded)
    }
    sendProblem(res, answer, ctx.id, headOnly)
  } else {
    ctx.bytesOut += sendProblem(res, error, ctx.id, headOnly)
  }
  if (ctx.http2 && !req.complete) resetAfterAnswer(res)
  // The handshake refused: the socket is the gateway's to close (no timer of node:http's watches it
  // now), and one whose client never closed its side held its max_connections place for ever.
  if (ctx.upgrade) res.once('finish', () => ctx.upgrade && endAfterAnswer(ctx.upgrade.socket))
}
