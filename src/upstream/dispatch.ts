// Forwards one request to its upstream and streams the answer back, both ways, without buffering.
//
// It uses undici's `dispatch` with a handler object: the upstream's chunks go straight into the
// client's socket with backpressure (pause/resume), so memory stays flat however large the body.
import type { ServerResponse } from 'node:http'
import type { Dispatcher } from 'undici'
import { GatewayError } from '../errors/index.ts'
import { nothingServed, type Exchange, type RequestContext, type Served } from '../request/index.ts'
import { translateUndiciError, upstreamSaturated } from './errors.ts'
import type { Upstream } from './pools.ts'
import { requestBody, upstreamHeaders, upstreamPath, type ForwardSettings } from './request.ts'
import { responseHeaders } from './response.ts'

/** Resolves when the response has been fully sent or the exchange ended; throws upstream_saturated before sending anything. */
export function forward(ctx: Readonly<RequestContext>, settings: ForwardSettings, exchange: Exchange): Promise<Served> {
  const { upstream } = settings
  if (upstream.inFlight >= upstream.maxConcurrent) throw upstreamSaturated(upstream, true)
  const served = nothingServed()
  const headers = upstreamHeaders(ctx, settings, exchange.extraHeaders)
  const body = requestBody(ctx, settings.maxBodyBytes, served)
  if (ctx.headers?.expectContinue && !ctx.continued) ctx.res.writeContinue()

  upstream.inFlight++
  return new Promise<Served>((resolve) => {
    const handler = new ForwardHandler(ctx, settings, exchange, served, resolve)
    upstream.pool.dispatch(
      { origin: upstream.origin, path: upstreamPath(ctx, settings), method: ctx.method, headers, body },
      handler,
    )
  })
}

class ForwardHandler implements Dispatcher.DispatchHandler {
  #ctx: Readonly<RequestContext>
  #upstream: Upstream
  #ownsCors: boolean
  #lifecycle: Exchange['lifecycle']
  #beforeEnd: Exchange['beforeEnd']
  #served: Served
  /** A beforeEnd hook waits: the head (for a bodiless response) and the last chunk are held until it resolves. */
  #heldHead: { status: number; headers: Record<string, string | string[]> } | null = null
  #heldChunk: Buffer | null = null
  #resolve: (served: Served) => void
  #controller: Dispatcher.DispatchController | null = null
  #settled = false
  #onClientClose: () => void
  #dispatchedAt = performance.now()

  constructor(ctx: Readonly<RequestContext>, settings: ForwardSettings, exchange: Exchange, served: Served, resolve: (served: Served) => void) {
    this.#ctx = ctx
    this.#upstream = settings.upstream
    this.#ownsCors = settings.ownsCors
    this.#lifecycle = exchange.lifecycle
    this.#beforeEnd = exchange.beforeEnd
    this.#served = served
    this.#resolve = resolve
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
    const served = this.#served
    served.upstreamStatus = statusCode
    served.upstreamMs = performance.now() - this.#dispatchedAt
    served.status = statusCode
    if (res.destroyed) {
      controller.abort(new ClientGone())
      return
    }
    if (this.#lifecycle.draining) res.shouldKeepAlive = false // tell the client to move on
    const out = responseHeaders(headers, ctx.id, this.#ownsCors)
    if (this.#beforeEnd) this.#heldHead = { status: statusCode, headers: out }
    else res.writeHead(statusCode, out)
  }

  onResponseData(controller: Dispatcher.DispatchController, chunk: Buffer): void {
    const res = this.#ctx.res
    this.#served.bytesOut += chunk.length
    if (this.#beforeEnd) {
      // One chunk behind: the last one is sent only once beforeEnd resolves.
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
      this.#finish()
      return
    }
    this.#beforeEnd(this.#served).then(() => {
      this.#writeHeldHead()
      this.#ctx.res.end(this.#heldChunk ?? undefined)
      this.#finish()
    }, (err: unknown) => this.onResponseError(this.#controller as Dispatcher.DispatchController, err as Error))
  }

  #writeHeldHead(): void {
    if (this.#heldHead === null) return
    this.#ctx.res.writeHead(this.#heldHead.status, this.#heldHead.headers)
    this.#heldHead = null
  }

  onResponseError(_controller: Dispatcher.DispatchController, err: Error): void {
    if (this.#settled) return
    if (!(err instanceof ClientGone)) {
      this.#served.error = err instanceof GatewayError ? err : translateUndiciError(err, this.#upstream)
      // The status is already on the wire: cut the connection so the client sees a truncated response.
      if (this.#ctx.res.headersSent) this.#ctx.res.destroy()
    }
    this.#finish()
  }

  #finish(): void {
    if (this.#settled) return
    this.#settled = true
    this.#upstream.inFlight--
    this.#ctx.res.removeListener('close', this.#onClientClose)
    this.#resolve(this.#served)
  }
}

class ClientGone extends Error {
  constructor() {
    super('the client closed the connection')
    this.name = 'ClientGone'
  }
}
