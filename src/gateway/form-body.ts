// A form or JSON POST's body (http/method-override.ts formBodyOf, jsonBodyOf), read whole before
// anything is forwarded: the `_method` in it decides how the POST is routed and authorized, and the
// upstream must not act on one before that. Bounded by server.max_body_bytes (413) and request_timeout (408), as any
// body is. The bytes are put back into the request stream (`unshift`) as they came, so every
// backend (the upstream, a function, a built-in endpoint) reads the body unchanged, as before.
import type { IncomingMessage } from 'node:http'
import type { Http2ServerRequest } from 'node:http2'
import { bodyNeverArrived, bodyTimedOut, bodyTooLarge, clientGone } from '../request/index.ts'

export interface FormBodyLimits {
  maxBytes: number
  /** performance.now() by which the body must have arrived whole; null: none of its own. */
  deadline: number | null
  /** Counts the bytes read as they arrive: a refused body's record says how much came. */
  counted: { bytesIn: number }
}

/** The whole body, left readable in `req` as if untouched. */
export function readFormBody(req: IncomingMessage, http2: boolean, limits: FormBodyLimits): Promise<Buffer> {
  if (clientGone(req)) return Promise.reject(bodyNeverArrived())
  // The source has ended (every byte is in the request's own buffer), though 'end' has not been
  // emitted: node:http sets `complete` as it pushes the end; node:http2's request says it only
  // after 'end', its stream as it pushes it, and ends a reset stream's body like a whole one: a
  // stream reset (a non-zero rstCode, set before) never ended its body.
  const stream = http2 ? (req as unknown as Http2ServerRequest).stream : null
  const ended = stream !== null ? () => stream.readableEnded && !stream.rstCode && !stream.aborted : () => req.complete
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = []
    let size = 0
    let timer: NodeJS.Timeout | undefined
    let settled = false
    const refuse = (error: unknown) => {
      done()
      reject(error)
    }
    const pull = () => {
      let chunk: Buffer | null
      while ((chunk = req.read() as Buffer | null) !== null) {
        size += chunk.length
        limits.counted.bytesIn = size
        if (size > limits.maxBytes) return refuse(bodyTooLarge(limits.maxBytes))
        chunks.push(chunk)
      }
      if (!ended()) return
      done()
      const body = chunks.length === 1 ? (chunks[0] as Buffer) : Buffer.concat(chunks, size)
      // In the same turn as the last read: 'end' (scheduled once the buffer is empty) is not emitted
      // while the bytes are back in it, and comes when the backend has read them.
      if (body.length > 0) req.unshift(body)
      resolve(body)
    }
    // What had arrived is counted before the refusal.
    const closed = () => {
      pull()
      if (!settled) refuse(bodyNeverArrived())
    }
    const done = () => {
      settled = true
      if (timer !== undefined) clearTimeout(timer)
      req.removeListener('readable', pull)
      req.removeListener('close', closed)
    }
    req.on('readable', pull)
    req.on('close', closed)
    if (limits.deadline !== null) timer = setTimeout(() => refuse(bodyTimedOut()), Math.max(0, limits.deadline - performance.now()))
    pull()
  })
}
