// HTTP/2 on the gateway listener (server.http2: by ALPN on TLS, HTTP/1.1 alongside). Requests go
// through node:http2's compatibility API into the same pipeline as HTTP/1.1; what differs is here:
// the settings and limits that bound what one connection may ask for (the known floods: rapid
// reset, CONTINUATION, SETTINGS and PING), how long an idle session may stay, and the few places
// where a stream is not a connection.
import { Http2ServerRequest, Http2ServerResponse, type Http2Session, type SecureServerOptions, type ServerHttp2Stream } from 'node:http2'
import type { IncomingMessage } from 'node:http'
import type { Http2Framing } from '../http/index.ts'
import type { ServerConfig } from '../config/index.ts'

/**
 * Streams one connection may have open at once (SETTINGS_MAX_CONCURRENT_STREAMS; Node's default is
 * unlimited). 100 is RFC 9113 §6.5.2's recommended floor, and what nginx and Envoy advertise.
 */
export const H2_MAX_CONCURRENT_STREAMS = 100

/**
 * Stream resets a client may cause: a burst, then a rate per second (nghttp2's token bucket, Node's
 * streamResetBurst/streamResetRate; their defaults 1000 and 33). Past it the session is ended: the
 * rapid-reset flood (CVE-2023-44487) opens and cancels streams as fast as it can, each one costing
 * the server a request's work. A browser cancels a few streams a second at most.
 */
export const H2_RESET_BURST = 100
export const H2_RESET_RATE = 33

/**
 * Frames a session may send that are invalid, and streams it may open beyond the concurrency
 * limit, before the session is ended (Node's defaults: 1000 and 100).
 */
const H2_MAX_INVALID_FRAMES = 100
const H2_MAX_REJECTED_STREAMS = 100

/** A header list over max_header_bytes gets 431 from the pipeline; over this many times it, the stream is reset. */
const HEADER_LIST_HARD_LIMIT_FACTOR = 2

/** Fields per header list (Node's default is 128; node:http takes 2,000 lines). */
const H2_MAX_HEADER_PAIRS = 512

/** Whether a stream was reset (by the client, or by the gateway) rather than ended: node:http2 ends both its sides either way. */
function wasReset(stream: ServerHttp2Stream): boolean {
  return stream.aborted || (stream.rstCode ?? 0) !== 0
}

/**
 * node:http2's response with what the pipeline and the forwarder ask of a node:http response:
 * whether the stream is gone, and whether the response was fully handed over. (@types/node
 * declares both on Http2ServerResponse; Node 24 has neither, so they are defined here.) A reset
 * stream's writable side is finished too, but nothing was handed over: read as finished, a reset
 * did not cancel the upstream request (it streamed on, in flight until it ended by itself).
 */
export class GatewayHttp2Response extends Http2ServerResponse {}
Object.defineProperties(GatewayHttp2Response.prototype, {
  destroyed: { get(this: Http2ServerResponse) { return this.stream.destroyed } },
  writableFinished: { get(this: Http2ServerResponse) { return this.stream.writableFinished && !wasReset(this.stream) } },
})

const BODY_RECEIVED = Symbol('bodyReceived')
const baseComplete = Object.getOwnPropertyDescriptor(Http2ServerRequest.prototype, 'complete')?.get as (this: Http2ServerRequest) => boolean

/**
 * node:http2's request, whose `complete` says what node:http's does: the whole body has arrived
 * (END_STREAM), read or not. Node's own is true only once the body has been read, and the
 * pipeline waits for a body to arrive before it forwards it (body-buffer.ts); it is also true for
 * a reset stream, whose readable side node:http2 ends as if the body were whole: so was a body cut
 * short dispatched, and streamed upstream with a proper end (upstream/request.ts).
 */
export class GatewayHttp2Request extends Http2ServerRequest {
  constructor(...args: ConstructorParameters<typeof Http2ServerRequest>) {
    super(...args)
    const [stream] = args
    // Before node:http2's own listener, which pushes the end of the body and may announce it at once.
    stream.prependOnceListener('end', () => ((this as unknown as Record<symbol, boolean>)[BODY_RECEIVED] = true))
  }
}
Object.defineProperty(GatewayHttp2Request.prototype, 'complete', {
  get(this: Http2ServerRequest & Record<symbol, boolean>) {
    if (wasReset(this.stream)) return false
    return this[BODY_RECEIVED] === true || baseComplete.call(this)
  },
})

const LISTENER_MAX_HEADER_BYTES = Symbol('maxHeaderBytes')

/**
 * The request class of one listener, which knows the max_header_bytes it was made with: the limit
 * is the listener's (node:http's parser and this session's settings have it), and a reload's change
 * waits for the restart. Judged by the config in force, a reload lowering it answered h2 clients
 * 431 at once while HTTP/1.1 ones were served. On the prototype: nothing per request.
 */
function listenerRequestClass(maxHeaderBytes: number): typeof GatewayHttp2Request {
  class ListenerRequest extends GatewayHttp2Request {}
  Object.defineProperty(ListenerRequest.prototype, LISTENER_MAX_HEADER_BYTES, { value: maxHeaderBytes })
  return ListenerRequest
}

/** The HTTP/2 part of the secure server's options. */
export function http2Options(settings: ServerConfig): Partial<SecureServerOptions> {
  return {
    allowHTTP1: true,
    settings: {
      maxConcurrentStreams: H2_MAX_CONCURRENT_STREAMS,
      maxHeaderListSize: settings.max_header_bytes * HEADER_LIST_HARD_LIMIT_FACTOR,
      enablePush: false,
    },
    maxHeaderListPairs: H2_MAX_HEADER_PAIRS,
    maxSessionInvalidFrames: H2_MAX_INVALID_FRAMES,
    maxSessionRejectedStreams: H2_MAX_REJECTED_STREAMS,
    streamResetBurst: H2_RESET_BURST,
    streamResetRate: H2_RESET_RATE,
    Http2ServerRequest: listenerRequestClass(settings.max_header_bytes),
    Http2ServerResponse: GatewayHttp2Response,
  } as Partial<SecureServerOptions>
}

/** How the pipeline reads an HTTP/2 request's headers (max_header_bytes: its listener's). */
export function http2Framing(req: IncomingMessage): Http2Framing {
  const maxHeaderBytes = (req as unknown as Record<symbol, number>)[LISTENER_MAX_HEADER_BYTES] as number
  return { bodyFollows: !(req as unknown as Http2ServerRequest).stream.endAfterHeaders, maxHeaderBytes }
}

/**
 * Each session, for shutdown and for its idle timer: a session with no open stream is closed
 * (GOAWAY) after keep_alive_timeout, and a new one that opens none after headers_timeout, as an
 * HTTP/1.1 connection would be.
 */
export function createSessionTracker(settings: () => ServerConfig): {
  add(session: Http2Session): void
  closeIdle(): void
  destroyAll(): void
} {
  const sessions = new Map<Http2Session, { open: number; idle: NodeJS.Timeout | null }>()
  // GOAWAY, then the session ends once its streams have; a client that takes nothing (not even the
  // GOAWAY) held it open for good: it is destroyed after send_timeout.
  const close = (session: Http2Session) => {
    if (session.closed) return
    session.close()
    setTimeout(() => {
      if (!session.destroyed) session.destroy()
    }, settings().send_timeout).unref()
  }
  const goIdle = (session: Http2Session, ms: number) => {
    const state = sessions.get(session)
    if (!state) return
    state.idle = setTimeout(() => close(session), ms).unref()
  }
  return {
    add(session) {
      const state = { open: 0, idle: null as NodeJS.Timeout | null }
      sessions.set(session, state)
      goIdle(session, settings().headers_timeout)
      session.on('stream', (stream: ServerHttp2Stream) => {
        state.open++
        if (state.idle !== null) clearTimeout(state.idle)
        state.idle = null
        stream.once('close', () => {
          if (--state.open === 0 && !session.closed) goIdle(session, settings().keep_alive_timeout)
        })
      })
      session.once('close', () => {
        if (state.idle !== null) clearTimeout(state.idle)
        sessions.delete(session)
      })
    },
    closeIdle() {
      for (const [session, state] of sessions) if (state.open === 0) close(session)
    },
    destroyAll() {
      for (const session of sessions.keys()) session.destroy()
    },
  }
}
