// A function as a route's backend: the whole body, the payload 2.0 event, one invocation on a worker
// of the function's pool, and its answer written back. The audit record, the metrics and the spans
// name the target `function:NAME` where an upstream's name would be.
import { GatewayError } from '../errors/index.ts'
import { answerPolicyApplies, hasBody, passedOn, type AnswerPolicy } from '../http/index.ts'
import { nothingServed, type Backend, type Exchange, type HoldBody, type RequestContext, type Served } from '../request/index.ts'
import { eventOversized, maxFunctionBody, readBody } from './body.ts'
import { payloadV2Event, type EventSettings } from './event.ts'
import type { FunctionResponse } from './messages.ts'
import type { FunctionPool } from './pool.ts'

export interface FunctionRouteSettings extends EventSettings {
  pool: FunctionPool
  maxBodyBytes: number
  /** The route has `cors`: the gateway's Access-Control-* headers stand, not the handler's, and Vary keeps Origin (as for an upstream). */
  ownsCors: boolean
  withheldCookies: ReadonlySet<string>
  holdBody: HoldBody
}

export function functionBackend(settings: FunctionRouteSettings): Backend {
  return {
    upstream: `function:${settings.pool.name}`,
    writesAnswerHeaders: true,
    serve: (ctx, exchange) => invoke(ctx, settings, exchange),
    refusalNow: () => (full(settings.pool) ? saturated(settings.pool) : null),
  }
}

/** Throws upstream_saturated before anything is sent; a failed invocation comes back in `served.error`. */
async function invoke(ctx: Readonly<RequestContext>, settings: FunctionRouteSettings, exchange: Exchange): Promise<Served> {
  const { pool } = settings
  // Refused before the body is read when no worker is free; checked again once it is.
  if (full(pool)) throw saturated(pool)
  // The body is held whole until the event is handed to the worker: with no bound on how many were,
  // sixty 6 MB uploads to a public function held 300 MB of the gateway (a probe). It takes its share
  // as a form does (the pipeline took one already for a form or JSON POST it read whole).
  // Per request: nothing for a request without a body.
  const share = !ctx.bodyHeld && hasBody(ctx.headers) ? await settings.holdBody(ctx, maxFunctionBody(settings.maxBodyBytes)) : null
  const served = nothingServed()
  const reading = readBody(ctx.req, ctx.headers, settings.maxBodyBytes, ctx.bodyDeadline, served)
  if (reading !== null && ctx.headers?.expectContinue && !ctx.continued) ctx.res.writeContinue()
  let body: Buffer | null
  try {
    body = reading === null ? null : await reading
  } catch (err) {
    // A body refused (413, 408) is answered with what had come of it in the record's bytes_in.
    if (!(err instanceof GatewayError)) throw err
    served.error = err
    return served
  }
  const slot = pool.take()
  if (slot === null) throw pool.closed ? replaced(pool) : saturated(pool)
  const event = JSON.stringify(payloadV2Event(ctx, settings, body))
  const oversized = eventOversized(event)
  if (oversized !== null) {
    pool.giveBack(slot)
    served.error = oversized
    return served
  }
  const started = performance.now()
  let response: FunctionResponse
  try {
    const running = pool.run(slot, event, { requestId: ctx.id, traceId: ctx.trace?.traceId ?? null })
    share?.release() // the event is the worker's now (posted): the gateway holds no copy of it
    response = await running
  } catch (err) {
    served.upstreamMs = performance.now() - started
    // As for an answer (respond): a client gone meanwhile got nothing, which the pipeline records
    // (499, or the shutdown's cut), not the error it never saw.
    if (!ctx.res.destroyed) served.error = err as GatewayError
    return served
  }
  served.upstreamMs = performance.now() - started
  served.upstreamStatus = response.status
  served.status = response.status
  await respond(ctx, answerPolicyApplies(settings) ? withoutGatewaysFields(response, settings) : response, exchange, served)
  return served
}

/**
 * The handler's fields without what the gateway owns (http/answer-headers.ts), as for an upstream.
 * A handler written for API Gateway often sets `Access-Control-Allow-Origin: *` itself, and
 * writeHead's list wins over what answerCors set earlier with setHeader.
 */
function withoutGatewaysFields(response: FunctionResponse, policy: AnswerPolicy): FunctionResponse {
  const headers: string[] = []
  for (let i = 0; i < response.headers.length; i += 2) {
    const name = response.headers[i] as string // lower case (messages.ts)
    const kept = passedOn(name, response.headers[i + 1] as string, policy)
    // One field a value: a Set-Cookie kept comes back as a list of that one.
    if (kept !== undefined) headers.push(name, typeof kept === 'string' ? kept : (kept[0] as string))
  }
  return { ...response, headers }
}

/**
 * 204 and 304 carry no body (RFC 9110 §6.4.1), nor does 205, which says so with Content-Length: 0
 * (§15.3.6): a handler's 205 went out with its body, and over HTTP/2 the stream was reset
 * (NGHTTP2_PROTOCOL_ERROR), its client answered nothing (a probe). HEAD gets the headers GET would.
 */
async function respond(ctx: Readonly<RequestContext>, response: FunctionResponse, exchange: Exchange, served: Served): Promise<void> {
  const { res } = ctx
  const { status, headers, body } = response
  const bodiless = status === 204 || status === 304
  const length = status === 205 ? 0 : typeof body === 'string' ? Buffer.byteLength(body) : body.byteLength
  if (!bodiless) headers.push('content-length', String(length))
  headers.push('x-request-id', ctx.id)
  const sendBody = !bodiless && length > 0 && ctx.method !== 'HEAD'
  // A client gone while the function ran gets nothing: the pipeline records its 499 (a probe found
  // such requests audited as the function's 200 with its whole body counted as sent).
  if (res.destroyed) return
  served.bytesOut = sendBody ? length : 0
  if (exchange.lifecycle.draining) res.shouldKeepAlive = false
  if (exchange.beforeEnd) await exchange.beforeEnd(served)
  res.writeHead(status, ctx.answerHeaders === null ? headers : withAnswerHeaders(headers, ctx.answerHeaders))
  res.end(sendBody ? body : undefined)
}

/** The function's fields with the gateway's (RateLimit, RequestContext.answerHeaders) in place of any of the same name. */
function withAnswerHeaders(headers: readonly string[], answer: readonly string[]): string[] {
  const names = new Set<string>()
  for (let i = 0; i < answer.length; i += 2) names.add(answer[i] as string)
  const out: string[] = []
  for (let i = 0; i < headers.length; i += 2) {
    if (!names.has((headers[i] as string).toLowerCase())) out.push(headers[i] as string, headers[i + 1] as string)
  }
  out.push(...answer)
  return out
}

function full(pool: FunctionPool): boolean {
  return pool.inFlight + pool.held >= pool.concurrency
}

/**
 * The request's pool was closed while its body came: a reload replaced the function and
 * shutdown_timeout passed (request_timeout is longer). It said "already has 1 invocation in
 * flight" with nothing in flight (a probe); worded as the pool's stop of one running (pool.ts).
 */
function replaced(pool: FunctionPool): GatewayError {
  return new GatewayError('function_error', { detail: `Function "${pool.name}" was stopped before this request's body had come: a reload replaced it (or the gateway is shutting down), and server.shutdown_timeout has passed. It was not run.` })
}

function saturated(pool: FunctionPool): GatewayError {
  const invocations = `${pool.concurrency} invocation${pool.concurrency === 1 ? '' : 's'}`
  return new GatewayError('upstream_saturated', {
    detail: pool.held === 0
      ? `Function "${pool.name}" already has ${invocations} in flight.`
      : `Function "${pool.name}" already has ${invocations} in flight or held: ${pool.held} of its workers timed out inside a system call (a read of a hung file system?) and cannot be stopped until it returns.`,
    headers: { 'retry-after': '1' },
  })
}
