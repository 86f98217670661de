// A request is forwarded only once its body is complete or its first window (the request stream's
// high-water mark, 64 KiB: what Node buffers per request anyway) has arrived. A client that
// trickles its body then holds only its own connection, until request_timeout answers 408, and
// never one of the upstream pool's connections: measured without this, 500 clients trickling a
// byte every 250 ms took all 128 and queued every other client's request behind them until their
// request_timeout (p99 5.9 s with request_timeout 6 s). nginx buffers request bodies for the same
// reason (proxy_request_buffering).
import type { IncomingMessage } from 'node:http'
import type { RequestHeaders } from '../http/index.ts'
import { bodyNeverArrived, bodyTimedOut, clientGone } from '../request/index.ts'

/**
 * The bytes to wait for before forwarding; 0 when there is nothing to wait for (no body, or enough
 * of it is here). Never more than one byte past max_body_bytes: a chunked body over a smaller limit
 * is refused (413) as it crosses it, not held until request_timeout (a probe).
 */
export function bodyWindow(req: IncomingMessage, headers: RequestHeaders, maxBodyBytes: number): number {
  const declared = headers.contentLength
  if (!headers.chunked && !(declared !== undefined && declared > 0)) return 0
  const window = Math.min(declared ?? Infinity, req.readableHighWaterMark, maxBodyBytes + 1)
  return arrived(req, window) ? 0 : window
}

/**
 * Resolves once `window` bytes (or the whole body) have arrived; request_timeout if the client goes
 * first, or when `timeoutMs` passes (the request's own deadline, on both protocols: node:http2 has
 * none, and node:http's answered raw, under another request id).
 */
export function bodyArrival(req: IncomingMessage, window: number, timeoutMs: number | null = null): Promise<void> {
  // Gone while an earlier stage awaited (a key fetch, the limits store): 'close' will not come again.
  if (clientGone(req)) return Promise.reject(bodyNeverArrived())
  return new Promise((resolve, reject) => {
    const timer = timeoutMs === null ? null : setTimeout(() => {
      done()
      reject(bodyTimedOut())
    }, Math.max(0, timeoutMs))
    // 'readable' is only a notification: nothing is read here, the forwarder streams it all.
    const check = () => {
      if (clientGone(req)) {
        done()
        reject(bodyNeverArrived())
      } else if (arrived(req, window)) {
        done()
        resolve()
      }
    }
    // Closed: the body is whole, or it never will be (an HTTP/2 stream reset leaves the request
    // itself not destroyed).
    const closed = () => {
      done()
      if (req.complete) resolve()
      else reject(bodyNeverArrived())
    }
    const done = () => {
      if (timer !== null) clearTimeout(timer)
      req.removeListener('readable', check)
      req.removeListener('close', closed)
    }
    req.on('readable', check)
    req.on('close', closed)
  })
}

function arrived(req: IncomingMessage, window: number): boolean {
  return req.complete || req.readableLength >= window
}
