// A request body read whole (a function's event, a token request's form, an MCP message), bounded in
// size and in time: by the pipeline's deadline (ctx.bodyDeadline, request_timeout from the head's
// end), on both protocols. An HTTP/2 stream has no other: these readers waited for the stream's end
// without it, and a client that sent its declared bytes without END_STREAM, or trickled, held the
// stream for ever (found by a probe; the token endpoint reads its form before any credential is
// checked). On HTTP/1.1 Node's requestTimeout is only a later backstop (gateway/server.ts).
import type { IncomingMessage } from 'node:http'
import { GatewayError } from '../errors/index.ts'

export interface WholeBodyLimits {
  maxBytes: number
  /** The refusal of a body larger than maxBytes. */
  tooLarge: () => GatewayError
  /** performance.now() by which the body must have ended; null: no deadline of its own. */
  deadline: number | null
  /** Counts the bytes read as they arrive, so a refused body's record says how much came (a Served). */
  counted?: { bytesIn: number }
}

export function readWholeBody(req: IncomingMessage, limits: WholeBodyLimits): Promise<Buffer> {
  if (req.readableEnded) return Promise.resolve(Buffer.alloc(0)) // read to its end already (an empty body)
  if (clientGone(req)) return Promise.reject(bodyNeverArrived())
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = []
    let size = 0
    let timer: NodeJS.Timeout | undefined
    // Not destroyed on a refusal: its answer (413, 408) still goes out, and the response closes the
    // connection or stream after it.
    const refuse = (error: GatewayError) => {
      done()
      req.pause()
      reject(error)
    }
    const counted = limits.counted
    const onData = (chunk: Buffer) => {
      size += chunk.length
      if (counted !== undefined) counted.bytesIn += chunk.length
      if (size > limits.maxBytes) refuse(limits.tooLarge())
      else chunks.push(chunk)
    }
    const onEnd = () => {
      done()
      resolve(chunks.length === 1 ? (chunks[0] as Buffer) : Buffer.concat(chunks, size))
    }
    const onClose = () => {
      done()
      reject(bodyNeverArrived())
    }
    const done = () => {
      if (timer !== undefined) clearTimeout(timer)
      req.removeListener('data', onData)
      req.removeListener('end', onEnd)
      req.removeListener('close', onClose)
      req.removeListener('error', onClose)
    }
    req.on('data', onData)
    req.on('end', onEnd)
    req.on('close', onClose)
    req.on('error', onClose)
    if (limits.deadline !== null && !req.complete) {
      timer = setTimeout(() => refuse(bodyTimedOut()), Math.max(0, limits.deadline - performance.now()))
    }
    // The pipeline's wait for the body used 'readable', which leaves the stream paused.
    req.resume()
  })
}

/** 413: a body over server.max_body_bytes, declared or counted as it arrives (every reader's one refusal). */
export function bodyTooLarge(maxBytes: number): GatewayError {
  return new GatewayError('payload_too_large', { detail: `The request body exceeds ${maxBytes} bytes.` })
}

/** 408: the client went before its body was whole. */
export function bodyNeverArrived(): GatewayError {
  return new GatewayError('request_timeout', { detail: 'The request body did not arrive before the connection closed.' })
}

/** 408: the body was not whole by request_timeout. */
export function bodyTimedOut(): GatewayError {
  return new GatewayError('request_timeout', { detail: 'The request body did not arrive within request_timeout.' })
}

/** The client has gone: its connection, or (HTTP/2) its stream, which node:http2's request does not say. */
export function clientGone(req: IncomingMessage): boolean {
  return req.destroyed || ((req as { stream?: { destroyed: boolean } }).stream?.destroyed ?? false)
}
