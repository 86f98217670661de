// A request is forwarded only once its body is complete or its first window (the request stream's
// high-water mark, 64 KiB: what Node buffers per request anyway) has arrived. A client that
// trickles its body then holds only its own connection, until request_timeout answers 408, and
// never one of the upstream pool's connections: measured without this, 500 clients trickling a
// byte every 250 ms took all 128 and queued every other client's request behind them until their
// request_timeout (p99 5.9 s with request_timeout 6 s). nginx buffers request bodies for the same
// reason (proxy_request_buffering).
import { GatewayError } from '../errors/index.ts'
import type { RequestContext } from '../request/index.ts'

/** null when there is nothing to wait for (no body, or enough of it is here): the common case costs no promise. */
export function bodyBuffered(ctx: RequestContext): Promise<void> | null {
  const { req, headers } = ctx
  if (headers === null || ctx.upgrade !== null) return null
  const declared = headers.contentLength
  if (!headers.chunked && !(declared !== undefined && declared > 0)) return null
  const window = Math.min(declared ?? Infinity, req.readableHighWaterMark)
  if (arrived(ctx, window)) return null
  // Gone while an earlier stage awaited (a key fetch, the limits store): 'close' will not come again.
  if (req.destroyed) return Promise.reject(bodyNeverArrived())
  if (headers.expectContinue) {
    // The client sends nothing until told to; the forwarder must not tell it twice.
    ctx.res.writeContinue()
    headers.expectContinue = false
  }
  return new Promise((resolve, reject) => {
    // 'readable' is only a notification: nothing is read here, the forwarder streams it all.
    const check = () => {
      if (req.destroyed) {
        done()
        reject(bodyNeverArrived())
      } else if (arrived(ctx, window)) {
        done()
        resolve()
      }
    }
    const done = () => {
      req.removeListener('readable', check)
      req.removeListener('close', check)
    }
    req.on('readable', check)
    req.on('close', check)
  })
}

function bodyNeverArrived(): GatewayError {
  return new GatewayError('request_timeout', { detail: 'The request body did not arrive before the connection closed.' })
}

function arrived(ctx: RequestContext, window: number): boolean {
  return ctx.req.complete || ctx.req.readableLength >= window
}
