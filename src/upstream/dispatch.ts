// Forwards one request to a target of its upstream and streams the answer back, both ways,
// without buffering; a failed try may be sent again to another target (retry.ts).
//
// It uses undici's `dispatch` with a handler object: the upstream's chunks go straight into the
// client's socket with backpressure (pause/resume), so memory stays flat however large the body.
// The same handler carries every try of a request: an answer that will be retried is read and
// dropped (the connection stays reusable), and nothing reaches the client until a try's answer
// is the one it gets.
import type { ServerResponse } from 'node:http'
import { Readable } from 'node:stream'
import type { Dispatcher } from 'undici'
import { cutShort, GatewayError } from '../errors/index.ts'
import { nothingServed, type Exchange, type RequestContext, type Served } from '../request/index.ts'
import { pickTarget } from './balance.ts'
import { brokeKeptAlive, failureOf, noHealthyTarget, translateUndiciError, upstreamSaturated } from './errors.ts'
import type { Upstream } from './pools.ts'
import { requestBody, upstreamHeaders, upstreamPath, type ForwardSettings } from './request.ts'
import { ResponseBuffer, type ResponseBufferLimits } from './response-buffer.ts'
import { bodyStillArriving, keepFirstOfSingleValues, resetAfterAnswer, type AnswerPolicy } from '../http/index.ts'
import { gatewayCookiePaths, gatewayLocations, responseHeaders } from './response.ts'
import { errors } from './undici-parts.ts'
import { depositRetryCredit, idempotent, replayable, retriesFailure, takeRetry, type Failure, type Replayable } from './retry.ts'
import { targetFailed, targetSucceeded, type Target } from './targets.ts'

/** Resolves when the response has been fully sent or the exchange ended; throws upstream_saturated or upstream_unavailable (503) before sending anything. */
export function forward(ctx: Readonly<RequestContext>, settings: ForwardSettings, exchange: Exchange): Promise<Served> {
  const { upstream } = settings
  if (!upstream.inFlight.enter(upstream.maxConcurrent)) throw upstreamSaturated(upstream, true)
  try {
    return forwardCounted(ctx, settings, exchange)
  } catch (err) {
    upstream.inFlight.leave(upstream.maxConcurrent) // refused before anything was sent (no healthy target, a body too large)
    throw err
  }
}

/** `forward` once the request holds its place in the upstream's in-flight count; the handler gives it back. */
function forwardCounted(ctx: Readonly<RequestContext>, settings: ForwardSettings, exchange: Exchange): Promise<Served> {
  const { upstream } = settings
  const target = pickTarget(upstream, ctx, null)
  if (target === null) throw noHealthyTarget(upstream)
  const served = nothingServed()
  const headers = upstreamHeaders(ctx, settings, exchange.extraHeaders)
  const policy = upstream.retry
  const replay = policy === null ? null : replayable(ctx, settings.maxBodyBytes, served)
  if (policy !== null) depositRetryCredit(upstream, policy)
  const body = replay === null ? requestBody(ctx, settings.maxBodyBytes, served) : replay.body
  if (ctx.headers?.expectContinue && !ctx.continued) ctx.res.writeContinue()

  return new Promise<Served>((resolve) => {
    const request: Dispatcher.DispatchOptions = { origin: target.url, path: upstreamPath(ctx, settings), method: ctx.method, headers, body }
    new ForwardHandler(ctx, settings, exchange, served, resolve, request, replay).send(target)
  })
}

/** What `forward` would refuse at once if called now, before anything is read or sent; null when it would go on. */
export function refusalNow(upstream: Upstream): GatewayError | null {
  if (upstream.inFlight.full(upstream.maxConcurrent)) return upstreamSaturated(upstream, true)
  for (const target of upstream.targets) if (target.available) return null
  return noHealthyTarget(upstream)
}

class ForwardHandler implements Dispatcher.DispatchHandler {
  #ctx: Readonly<RequestContext>
  #upstream: Upstream
  #policy: AnswerPolicy & Pick<ForwardSettings, 'via'>
  #lifecycle: Exchange['lifecycle']
  #beforeEnd: Exchange['beforeEnd']
  /** What the answer's headers must not hold besides the upstream's credentials (response.ts): the headers added for this request. */
  #sent: readonly string[] | null
  /** The route forwards its own path (no upstream_path): a Location or cookie Path under the base path maps back to one (gatewayLocation, gatewayCookiePaths). */
  #mapsLocation: boolean
  #served: Served
  #request: Dispatcher.DispatchOptions
  /** Null when the request can be sent only once (no retries, or a body that streams). */
  #replay: Replayable | null
  #target: Target | null = null
  /** Targets of the tries that failed, and the one the next try goes to. */
  #tried: Target[] | null = null
  #nextTarget: Target | null = null
  /** A try broke on a kept-alive connection the upstream closed as idle, and was sent again (#mayResendAfterIdleClose). */
  #resentAfterIdleClose = false
  /** This try's answer is being read and dropped: the request goes again once it has ended. */
  #discarding = false
  /** Bytes of this try's dropped answer read so far, and when its head came. */
  #dropped = 0
  #dropSince = 0
  /** When this try's first 1xx came (0: none yet). */
  #interimSince = 0
  /** The timer of a try waiting in its pool's queue (send), until the pool starts it. */
  #queued: NodeJS.Timeout | null = null
  /** The target whose pool still holds the try this exchange left in its queue (#leaveQueue). */
  #leftInQueue: Target | null = null
  /** The head until the first body byte or the end; with a beforeEnd hook, the last chunk is held too until it resolves. */
  #heldHead: { status: number; headers: Record<string, string | string[]> } | null = null
  #heldChunk: Buffer | null = null
  #resolve: (served: Served) => void
  #controller: Dispatcher.DispatchController | null = null
  #settled = false
  #onClientClose: () => void
  /** When this try was sent: upstream_ms is the answering try's own time, not the failed tries' before it. */
  #dispatchedAt = 0
  #bufferLimits: ResponseBufferLimits
  #buffer: ResponseBuffer | null = null
  #releasesAtEnd = false
  /** The answer is chunked, or short enough to be held whole. */
  #mayHold = false
  /** A 205's body is read and dropped (onResponseStart). */
  #bodiless = false
  /** The answer began before the request's body had all come. */
  #unreadBody = false
  /** A held stream's way out of the open tunnels' registry (HELD_STREAM_TYPE); null for any other answer. */
  #leaveHeld: (() => void) | null = null
  /** The gateway ended a held stream that is no event stream: its answer is cut, not ended as if complete. */
  #cutHeld = false

  constructor(ctx: Readonly<RequestContext>, settings: ForwardSettings, exchange: Exchange, served: Served, resolve: (served: Served) => void, request: Dispatcher.DispatchOptions, replay: Replayable | null) {
    this.#ctx = ctx
    this.#upstream = settings.upstream
    this.#policy = settings
    this.#bufferLimits = settings.responseBuffer
    this.#lifecycle = exchange.lifecycle
    this.#beforeEnd = exchange.beforeEnd
    this.#sent = exchange.extraHeaders
    this.#mapsLocation = settings.rewrite === null
    this.#served = served
    this.#resolve = resolve
    this.#request = request
    this.#replay = replay
    // A client that hangs up mid-exchange: stop the upstream request too.
    this.#onClientClose = () => {
      if (this.#settled || ctx.res.writableFinished) return
      if (this.#controller !== null) this.#controller.abort(new ClientGone())
      else if (this.#queued !== null) this.#leaveQueue(null) // waiting for a pool connection: nothing to stop yet
    }
    ctx.res.once('close', this.#onClientClose)
  }

  /** One try, to this target. */
  send(target: Target): void {
    this.#target = target
    this.#controller = null
    this.#discarding = false
    this.#dropped = 0
    this.#interimSince = 0
    target.inFlight++
    target.counts.requests++
    this.#served.attempts++
    this.#dispatchedAt = performance.now()
    const request = this.#request
    if (request.origin !== target.url) request.origin = target.url
    // undici queues a try for which every connection of the pool is busy, for as long as that
    // lasts, with no timer and no way to withdraw it: behind connections held by a hung upstream
    // (each freed after `timeout`) a queue of requests waited many times `timeout` with nothing
    // said (a probe: 7 s at timeout 1 s and max_connections 2). Such a try gets `timeout` to leave
    // the queue (#leaveQueue). One compare a try; a timer only for a try that queues.
    if (++target.pooled > target.connections) this.#queued = setTimeout(() => this.#queueTimedOut(), this.#upstream.timeoutMs)
    target.pool.dispatch(request, this)
  }

  /** undici lets go of the try left in its queue (started, which closes that connection, or failed): its place in the count is given back. */
  #letGo(): void {
    if (this.#leftInQueue === null) return
    this.#leftInQueue.pooled--
    this.#leftInQueue = null
  }

  #queueTimedOut(): void {
    const target = this.#target as Target
    this.#leaveQueue(new GatewayError('upstream_timeout', { detail: `Upstream "${this.#upstream.name}" did not answer in time: every one of a target's ${target.connections} connections (max_connections) stayed busy for ${this.#upstream.timeoutMs} ms.` }))
  }

  /**
   * Ends the exchange of a try still in the pool's queue (`error` for the client; null: it left).
   * The try stays in undici's queue: its place in the pool's count is given back only when undici
   * reaches it and onRequestStart aborts it, so that the tries after it still see the queue.
   */
  #leaveQueue(error: GatewayError | null): void {
    if (this.#settled || this.#queued === null) return
    clearTimeout(this.#queued)
    this.#queued = null
    this.#leftInQueue = this.#target
    if (error !== null) this.#served.error = error
    this.#finish()
  }

  onRequestStart(controller: Dispatcher.DispatchController): void {
    if (this.#settled) {
      this.#letGo()
      controller.abort(new ClientGone())
      return
    }
    if (this.#queued !== null) {
      clearTimeout(this.#queued)
      this.#queued = null
    }
    this.#controller = controller
    if (this.#ctx.res.destroyed) controller.abort(new ClientGone())
  }

  onResponseStart(controller: Dispatcher.DispatchController, statusCode: number, headers: Record<string, string | string[] | undefined>): void {
    if (statusCode < 200) {
      // 1xx interim responses are not relayed. undici restarts its head timer at each one
      // (client-h1.js), so an upstream sending 102 or 103 every few hundred ms and never a final
      // answer held the request, its client and a connection for good (a probe): a 1xx more than
      // `timeout` after the try's first ends it as the head timeout does (504, a `timeout` to
      // retries and ejection). Counted from the first 1xx, not the dispatch, so that a try that
      // waited for a pool connection is not cut short; the clock is read on 1xx answers only.
      const now = performance.now()
      if (this.#interimSince === 0) this.#interimSince = now
      else if (now - this.#interimSince > this.#upstream.timeoutMs) controller.abort(new errors.HeadersTimeoutError())
      return
    }
    if (statusCode > 599) {
      // Not an HTTP status (RFC 9110 §15): Node's HTTP/1 writes any up to 999, and a client reads it as whatever it likes.
      controller.abort(new GatewayError('upstream_error', { detail: `Upstream "${this.#upstream.name}" answered with status ${statusCode}, which is not an HTTP status.` }))
      return
    }
    const coding = headers['transfer-encoding']
    if (coding !== undefined && !onlyChunked(coding)) {
      // undici undoes the chunks, nothing else: relayed re-chunked without the field that named
      // it, a gzip transfer coding reached the client as a body of compressed bytes no field
      // explained (nginx 1.22 does so). Refused, as a request's is (400).
      controller.abort(new GatewayError('upstream_error', { detail: `Upstream "${this.#upstream.name}" answered with Transfer-Encoding "${String(coding)}": the gateway relays no transfer coding but chunked.` }))
      return
    }
    const target = this.#target as Target
    if (statusCode >= 500) {
      targetFailed(this.#upstream, target)
      if (this.#mayRetry(statusCode, asksToWait(headers['retry-after']))) {
        this.#discarding = true
        this.#dropSince = performance.now()
        return
      }
    } else {
      targetSucceeded(target)
    }
    const ctx = this.#ctx
    const res: ServerResponse = ctx.res
    const served = this.#served
    served.upstreamStatus = statusCode
    served.upstreamMs = performance.now() - this.#dispatchedAt
    served.status = statusCode
    if (res.destroyed) {
      controller.abort(new ClientGone())
      return
    }
    if (this.#lifecycle.draining) res.shouldKeepAlive = false // tell the client to move on
    // An answer before the request's body has all come (an upstream's early 413 or 401): undici
    // stops reading the body at the answer's end, and the rest of it would sit unread on the
    // client's connection, which then answered nothing more (its next request hung). HTTP/1.1
    // closes the connection after the answer, as the pipeline's own refusals do; HTTP/2 resets the
    // stream once the answer is out (#endAnswer).
    if (bodyStillArriving(ctx.req, ctx.headers)) {
      this.#unreadBody = true
      if (!ctx.http2) res.shouldKeepAlive = false
    }
    const out = responseHeaders(headers, ctx.id, this.#policy, ctx.answerHeaders, this.#upstream.credentials, this.#sent)
    if (this.#mapsLocation) {
      if (out.location !== undefined) out.location = gatewayLocations(out.location, this.#upstream)
      const cookies = out['set-cookie']
      if (cookies !== undefined) out['set-cookie'] = gatewayCookiePaths(cookies, this.#upstream.basePath)
    }
    // RFC 9110 §8.6: no Content-Length on a 204, whatever the upstream sent (its body is dropped).
    if (statusCode === 204) delete out['content-length']
    // RFC 9110 §15.3.6: a 205 has no content, and says so with Content-Length: 0. An upstream's that
    // had a body was relayed with it: an HTTP/2 client's stream was reset (nghttp2 ends a 205's
    // stream with its head), an HTTP/1.1 one got content a 205 may not have. Its body is read and dropped.
    this.#bodiless = statusCode === 205
    if (this.#bodiless) out['content-length'] = '0'
    if (ctx.http2) keepFirstOfSingleValues(out)
    // Written with the first body byte or the end: an upstream that fails before either still gets
    // its client a 502 (Node's HTTP/1 sends a head only with the first write anyway).
    this.#heldHead = { status: statusCode, headers: out }
    // Only an answer that can fit is held for its client: holding the start of a larger one frees
    // no upstream connection, and in a 1 MB streaming bench it let some answers run ahead of
    // others (p99 150-190 -> 425 ms; bench/README.md "Profiling").
    const length = headers['content-length']
    this.#mayHold = typeof length !== 'string' || Number(length) <= this.#bufferLimits.perResponse
    // A server-sent event stream, or a subscription streamed as JSON lines or as replaced parts,
    // outlives its request, the only one authenticated and authorized: it joins the open tunnels'
    // registry, which ends it when the credential expires or is revoked, or a reload refuses the
    // request (gateway/tunnels.ts). The drain ends an event stream at its start (its client
    // reconnects elsewhere); the others run on to server.shutdown_timeout as any answer does, since
    // a JSON-lines export may be one that finishes.
    const held = heldStreamOf(headers['content-type'])
    if (held !== null) {
      const { events } = held
      this.#leaveHeld = this.#lifecycle.openTunnels.add({
        ctx,
        what: held.what,
        close: (code, note) => {
          if (events || code !== 1001) this.#endHeld(note, !events)
        },
      })
    }
  }

  /**
   * Ends a held stream from the gateway's side: the upstream's request is aborted. An event
   * stream's answer ends as if complete (its client reconnects); another is cut, as an upstream
   * failing mid-answer cuts it, so a client reading lines does not take what came for the whole.
   */
  #endHeld(note: string, cut: boolean): void {
    if (this.#settled || this.#served.note !== undefined) return
    this.#served.note = note
    this.#cutHeld = cut
    this.#controller?.abort(new HeldStreamEnded())
  }

  onResponseData(controller: Dispatcher.DispatchController, chunk: Buffer): void {
    if (this.#discarding) {
      // Read and dropped so that its connection stays reusable, but only a short answer that ends
      // soon: an endless 503 body (undici's body timeout restarts at each chunk) held the request
      // and its client for good, the healthy target never asked, and a 200 MB one was read whole
      // before the retry (a probe). Past DROP_LIMIT bytes or `timeout` after its head, the connection
      // is closed instead and the request goes on (onResponseError). Dropped answers only.
      this.#dropped += chunk.length
      if (this.#dropped > DROP_LIMIT || performance.now() - this.#dropSince > this.#upstream.timeoutMs) controller.abort(new DropAbandoned())
      return
    }
    if (this.#bodiless) return
    const res = this.#ctx.res
    this.#served.bytesOut += chunk.length
    if (this.#beforeEnd === null) this.#writeHeldHead()
    else {
      // One chunk behind: the last one is sent only once beforeEnd resolves.
      const previous = this.#heldChunk
      this.#heldChunk = chunk
      if (previous === null) return
      this.#writeHeldHead()
      chunk = previous
    }
    if (!res.write(chunk) && !(this.#mayHold && this.#held(chunk.length))) {
      controller.pause()
      res.once('drain', () => controller.resume())
    }
  }

  /** Whether `bytes` the client has not taken yet may wait in memory, the upstream read on (response-buffer.ts). */
  #held(bytes: number): boolean {
    const buffer = (this.#buffer ??= new ResponseBuffer(this.#bufferLimits, this.#ctx.connection))
    const res = this.#ctx.res
    const first = !buffer.holding
    if (!buffer.take(bytes)) return false
    const release = () => buffer.release()
    if (first) res.once('drain', release)
    if (!this.#releasesAtEnd) {
      // An answer that ends, or a client that goes, before it drains gives its share back too.
      this.#releasesAtEnd = true
      res.once('finish', release)
      res.once('close', release)
    }
    return true
  }

  onResponseEnd(): void {
    if (this.#discarding) {
      this.#sendAgain()
      return
    }
    if (!this.#beforeEnd) {
      this.#writeHeldHead()
      this.#endAnswer()
      return
    }
    this.#beforeEnd(this.#served).then(() => {
      this.#writeHeldHead()
      this.#endAnswer(this.#heldChunk ?? undefined)
    }, (err: unknown) => this.onResponseError(this.#controller as Dispatcher.DispatchController, err as Error))
  }

  #endAnswer(last?: Buffer): void {
    const ctx = this.#ctx
    ctx.res.end(last)
    if (this.#unreadBody && ctx.http2 && !ctx.req.complete) resetAfterAnswer(ctx.res)
    this.#finish()
  }

  #writeHeldHead(): void {
    if (this.#heldHead === null) return
    this.#ctx.res.writeHead(this.#heldHead.status, this.#heldHead.headers)
    this.#heldHead = null
  }

  onResponseError(_controller: Dispatcher.DispatchController, err: Error): void {
    if (this.#settled) {
      this.#letGo()
      return
    }
    if (err instanceof ClientGone) {
      this.#finish()
      return
    }
    if (err instanceof HeldStreamEnded) {
      // Nothing sent yet: an empty answer, whole, is no truncated one.
      if (!this.#cutHeld || this.#heldHead !== null) this.onResponseEnd()
      else {
        cutShort(this.#ctx.res)
        this.#finish()
      }
      return
    }
    if (this.#discarding) {
      // The answer being dropped broke off: the retry was decided already.
      this.#sendAgain()
      return
    }
    if (this.#served.upstreamStatus === null && !(err instanceof GatewayError)) {
      // No answer from this target: its fault, unless it is no fault at all (a bad request body).
      const failure = failureOf(err)
      if (failure === 'reset' && this.#mayResendAfterIdleClose(err)) {
        this.#sendAgain()
        return
      }
      if (failure !== null) {
        targetFailed(this.#upstream, this.#target as Target)
        if (this.#mayRetry(failure)) {
          this.#sendAgain()
          return
        }
      }
    }
    if (bodilessAnswer(this.#served, err)) {
      this.onResponseEnd()
      return
    }
    this.#served.error = err instanceof GatewayError ? err : translateUndiciError(err, this.#upstream)
    // The status is already on the wire: cut the connection so the client sees a truncated response.
    if (this.#ctx.res.headersSent) cutShort(this.#ctx.res)
    this.#finish()
  }

  /**
   * Whether a try that broke on a kept-alive connection before any of its answer is sent once more,
   * to the same target (a new connection, or another kept alive): the upstream closed the connection
   * as idle while the request was on its way, which HTTP lets any server do at any time (RFC 9112
   * §9.5), and a client may then send an idempotent request again (RFC 9110 §9.2.2). It got 502
   * whatever `retries` said (a probe). As nginx does after an error on a cached connection, and Go's
   * transport on a reused one: whatever `retries` says, an extra try that spends no attempt of it
   * and no budget, and no failure of the target's. Once: a second such break is a failure like any.
   * Not a request that may have been acted on (POST), nor one whose body streamed and is gone.
   */
  #mayResendAfterIdleClose(err: Error): boolean {
    if (this.#resentAfterIdleClose || this.#ctx.res.destroyed || !brokeKeptAlive(err) || !idempotent(this.#ctx.method)) return false
    if (this.#replay === null && this.#request.body !== null) return false
    this.#resentAfterIdleClose = true
    this.#upstream.retryCounts.retries++
    this.#nextTarget = this.#target
    return true
  }

  /**
   * Whether this failed try is sent again: policy, tries left, a target to take it, and the budget,
   * in that order. `waitAsked`: the answer said when to come back (Retry-After), and only a target
   * not tried yet may take it.
   */
  #mayRetry(failure: Failure, waitAsked = false): boolean {
    const replay = this.#replay
    const policy = this.#upstream.retry
    // The try resent after an idle close is nginx's extra one: not one of the policy's attempts.
    const attempts = this.#served.attempts - (this.#resentAfterIdleClose ? 1 : 0)
    if (policy === null || attempts >= policy.attempts || this.#ctx.res.destroyed) return false
    if (replay === null) {
      // A body that streams (over 64 KiB, or not all here yet) is not held to be sent twice; but a
      // connection that failed read none of it, and the same untouched stream goes to the next
      // target, as nginx's proxy_next_upstream sends any body after a connect error.
      if (failure !== 'connect_failure' || !policy.onConnectFailure || !unread(this.#request.body)) return false
    } else if (!retriesFailure(policy, failure, replay.idempotent)) return false
    const tried = (this.#tried ??= [])
    tried.push(this.#target as Target)
    const next = pickTarget(this.#upstream, this.#ctx, tried)
    // A target that asked for time was sent the request again at once, `attempts` times over (the
    // only target, or each of two in turn): an overloaded upstream got more load the moment it
    // asked for less, and its client waited for every try (a probe). Its answer goes on as it is.
    if (next === null || (waitAsked && tried.includes(next)) || !takeRetry(this.#upstream)) return false
    this.#nextTarget = next
    return true
  }

  #sendAgain(): void {
    this.#endTry()
    const next = this.#nextTarget as Target
    this.#nextTarget = null
    this.send(next)
  }

  #endTry(): void {
    if (this.#target === null) return
    this.#target.inFlight--
    if (this.#leftInQueue !== this.#target) this.#target.pooled--
    this.#target = null
    // A queued try that failed unstarted (its connection refused): its timer must not end the next.
    if (this.#queued !== null) {
      clearTimeout(this.#queued)
      this.#queued = null
    }
  }

  #finish(): void {
    if (this.#settled) return
    this.#settled = true
    this.#leaveHeld?.()
    this.#endTry()
    this.#upstream.inFlight.leave(this.#upstream.maxConcurrent)
    this.#ctx.res.removeListener('close', this.#onClientClose)
    this.#resolve(this.#served)
  }
}

/** RFC 9112 §7: `chunked` alone (undici has read the framing; any other coding is still on the body). */
function onlyChunked(coding: string | string[]): boolean {
  return typeof coding === 'string' && coding.trim().toLowerCase() === 'chunked'
}

/**
 * RFC 9110 §10.2.3: a Retry-After that asks for time (seconds above 0, or a date to come); one that
 * cannot be read asks for none. Of several (an app and its proxy each adding one), the first.
 */
function asksToWait(value: string | string[] | undefined): boolean {
  const first = Array.isArray(value) ? value[0] : value
  if (first === undefined) return false
  const text = first.trim()
  if (/^\d+$/.test(text)) return Number(text) > 0
  return Date.parse(text) > Date.now()
}

/** A request body of which nothing was taken yet (none at all, or a stream never read). */
function unread(body: Dispatcher.DispatchOptions['body']): boolean {
  if (body === null || body === undefined) return true
  return body instanceof Readable && !body.readableDidRead && !body.destroyed
}

/**
 * A 204 or 304 carries no body whatever its Content-Length says (RFC 9110 §8.6: a 304's is the
 * selected representation's); undici counts it against the bytes read and fails the answer.
 */
function bodilessAnswer(served: Served, err: Error): boolean {
  const status = served.upstreamStatus
  return (status === 304 || status === 204) && served.bytesOut === 0 && (err as { code?: string }).code === 'UND_ERR_RES_CONTENT_LENGTH_MISMATCH'
}

/** What the records' notes call an upstream's server-sent event stream the gateway ended, and another held stream. */
const EVENT_STREAM = 'the event stream'
const STREAMED_ANSWER = 'the streamed answer'
/**
 * Answers held open as subscriptions: server-sent events (group 1), JSON lines by their several
 * names (NDJSON, JSON Lines, RFC 7464 JSON text sequences, Spring's stream+json), and
 * multipart/x-mixed-replace (a camera's MJPEG). One test per answer; the match only for these.
 */
const HELD_STREAM_TYPE = /^\s*(?:(text\/event-stream)|application\/(?:x-ndjson|jsonl|x-jsonlines|json-seq|stream\+json|x-ldjson)(?=[\s;,]|$)|multipart\/x-mixed-replace(?=[\s;,]|$))/i

/**
 * An answer held open as a subscription, by its Content-Type: what the records' notes call it, and
 * whether it is an event stream (the drain ends it; it ends as complete rather than cut). Null for
 * any other answer.
 */
export function heldStreamOf(type: string | string[] | undefined): { what: string; events: boolean } | null {
  const held = typeof type === 'string' ? HELD_STREAM_TYPE.exec(type) : null
  if (held === null) return null
  const events = held[1] !== undefined
  return { what: events ? EVENT_STREAM : STREAMED_ANSWER, events }
}

/** The gateway ended a stream it held open (the registry's close): its answer ends or is cut (#endHeld), no failure. */
class HeldStreamEnded extends Error {
  constructor() {
    super('the gateway ended the event stream')
    this.name = 'HeldStreamEnded'
  }
}

/** What of a retried answer is read and dropped to keep its connection (onResponseData): a short error page. */
const DROP_LIMIT = 65_536

/** A retried answer too long to read to its end: its connection is closed and the request goes on. */
class DropAbandoned extends Error {
  constructor() {
    super('the retried answer was too long to read and drop')
    this.name = 'DropAbandoned'
  }
}

class ClientGone extends Error {
  constructor() {
    super('the client closed the connection')
    this.name = 'ClientGone'
  }
}
