// Runs an MCP tool call's request through the pipeline, in-process: Node's HTTP server and client
// speak over a duplex pair (no socket, no port), so the request is parsed, matched, authorized,
// throttled, forwarded and audited exactly as a client's would be. The connection carries the
// caller the MCP endpoint authenticated (request/tool-call.ts); nothing outside this process can
// open one, so no client can claim to be an internal call.
//
// The answer becomes the tool's result, so it is read whole: up to server.max_body_bytes, the bound
// the MCP endpoint already puts on what an agent sends (a 200 MB answer took the gateway from 218 MB
// to 1.46 GB). Past it, and when the agent goes away (the request's signal), the exchange is cut:
// the pipeline sees its client leave and aborts the upstream request.
import type { IncomingMessage, ServerResponse } from 'node:http'
import { duplexPair, type Duplex } from 'node:stream'
import { GatewayError, problemBody } from '../errors/index.ts'
import { createContext, markInternal, type InternalDispatch, type InternalRequest, type InternalResponse, type RequestContext } from '../request/index.ts'
import { handle } from './pipeline.ts'
import type { GatewayState } from './state.ts'
import { nodeHttp } from '../http/index.ts'

const { createServer, request: httpRequest } = nodeHttp // not imported: http/node-http.ts says why

/** One call's in-process connection: its two ends, and the pipeline's context once the request arrived. */
interface Exchange {
  readonly client: Duplex
  readonly served: Duplex
  ctx: RequestContext | null
}

export function createInternalDispatch(state: GatewayState): InternalDispatch {
  /** Keyed by the server's end of the connection (the request's socket). */
  const exchanges = new WeakMap<Duplex, Exchange>()
  const server = createServer({ insecureHTTPParser: false, requireHostHeader: false, joinDuplicateHeaders: false })
  server.on('request', (req: IncomingMessage, res: ServerResponse) => {
    const ctx = createContext(req, res)
    const exchange = exchanges.get(req.socket)
    if (exchange) {
      exchange.ctx = ctx
      // Closed once the answer has been read to its end (or cut): one end destroyed alone leaves
      // the other's last write waiting to be read, and the route's request paused with it (a 50 MB
      // answer was audited as upstream_error once its upstream closed the idle connection).
      res.once('close', () => cut(exchange))
    }
    void handle(state, ctx)
  })
  return function dispatchInternally(request: InternalRequest): Promise<InternalResponse> {
    const { signal } = request
    if (signal?.aborted) return Promise.reject(signal.reason as Error)
    const maxBytes = state.runtime.config.server.max_body_bytes
    const [client, served] = duplexPair()
    const exchange: Exchange = { client, served, ctx: null }
    exchanges.set(served, exchange)
    markInternal(served, request)
    server.emit('connection', served)
    return new Promise<InternalResponse>((resolve, reject) => {
      let settled = false
      const settle = () => {
        if (settled) return false
        settled = true
        signal?.removeEventListener('abort', onAbort)
        return true
      }
      const onAbort = () => {
        if (!settle()) return
        if (exchange.ctx) exchange.ctx.note = 'The agent left before the tool\'s answer was complete: the route\'s request was cancelled.'
        cut(exchange)
        reject(signal?.reason as Error)
      }
      const fail = (err: Error) => {
        if (!settle()) return
        cut(exchange)
        reject(err)
      }
      /** The gateway's own refusal in place of an answer begun, as a client would get it had the answer not begun. */
      const refuseBegun = (res: IncomingMessage, error: GatewayError, id: string | undefined) => {
        const requestId = id ?? String(res.headers['x-request-id'] ?? crypto.randomUUID())
        cut(exchange)
        resolve({ status: error.status, headers: { 'content-type': 'application/problem+json', 'x-request-id': requestId }, body: Buffer.from(problemBody(error, requestId)), mayHaveRun: true })
      }
      const tooLarge = (res: IncomingMessage) => {
        if (!settle()) return
        const error = new GatewayError('payload_too_large', { detail: `The route's answer exceeds ${maxBytes} bytes (server.max_body_bytes), the most a tool's answer may be: it was cut off.` })
        refuseBegun(res, error, recordCut(exchange, error))
      }
      // An answer cut short (its upstream failed mid-answer): the agent had a JSON-RPC internal
      // error saying only "aborted" (a probe). It is told the failure the route's record names.
      const cutShort = (res: IncomingMessage) => {
        if (!settle()) return
        const recorded = exchange.ctx?.error
        refuseBegun(res, recorded && recorded.status >= 500 ? recorded : new GatewayError('upstream_error', { detail: 'The route\'s answer was cut off before its end.' }), undefined)
      }
      signal?.addEventListener('abort', onAbort, { once: true })
      const outgoing = httpRequest({
        method: request.method,
        path: request.target,
        // keep-alive: with `close`, Node's client ends its side as soon as it has read the answer,
        // which the server takes for its client leaving before its answer has finished.
        headers: { ...request.headers, host: 'bouncer.internal', connection: 'keep-alive', 'content-length': String(request.body?.length ?? 0) },
        // No agent: Node then opens the one connection with createConnection.
        createConnection: () => client as never,
      }, (res) => {
        // A HEAD answer's length is the GET one's: it brings no body.
        if (request.method !== 'HEAD' && Number(res.headers['content-length']) > maxBytes) return tooLarge(res)
        const chunks: Buffer[] = []
        let size = 0
        res.on('data', (chunk: Buffer) => {
          size += chunk.length
          if (size > maxBytes) tooLarge(res)
          else if (!settled) chunks.push(chunk)
        })
        res.on('end', () => {
          if (settle()) resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks, size), mayHaveRun: mayHaveRun(exchange.ctx) })
        })
        res.on('error', () => cutShort(res))
      })
      outgoing.on('error', fail)
      outgoing.end(request.body ?? undefined)
    })
  }
}

/**
 * Whether the route's backend may have run the request, once the pipeline has answered: not when
 * the gateway refused it (a deny: its policy, limits, checks) or its only try found no connection
 * to the upstream (upstream_unavailable, upstream_saturated: nothing was sent). Of several tries,
 * one may have reached it, so they count as run. An approval spent on a call that never ran is
 * given back (agents/mcp/protocol.ts).
 */
function mayHaveRun(ctx: RequestContext | null): boolean {
  if (ctx === null) return false
  if (ctx.upstreamStatus !== null) return true
  if (ctx.decision === 'deny') return false
  return !(ctx.attempts <= 1 && (ctx.code === 'upstream_unavailable' || ctx.code === 'upstream_saturated'))
}

/** Both ends go: the server's closing is its client leaving, which the pipeline answers by aborting the upstream request. */
function cut(exchange: Exchange): void {
  exchange.client.destroy()
  exchange.served.destroy()
}

/**
 * The route's record says why its exchange was cut; its status stays the one its answer began
 * with, as for any answer cut short. Answers the request's id, if the pipeline has given it one.
 */
function recordCut(exchange: Exchange, error: GatewayError): string | undefined {
  const ctx = exchange.ctx
  if (ctx === null) return undefined
  // durability: sync committed the record before the answer's last chunk, the one that crossed the
  // bound: that record stands (200) and is not changed behind the audit's back (a review).
  if (ctx.audited) return ctx.id === '' ? undefined : ctx.id
  ctx.error = error
  ctx.code = error.code
  ctx.decision = 'error'
  return ctx.id === '' ? undefined : ctx.id
}
