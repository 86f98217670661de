// A function gets the request body whole (the event holds it as a string), so it is read to its end
// here, bounded by max_body_bytes: a chunked body that grows past it is refused with 413 like one
// that declares its length (the pipeline refused those already). The pipeline has waited for the
// body's first window; a slow rest holds only this request's connection, not a worker.
import type { IncomingMessage } from 'node:http'
import { GatewayError } from '../errors/index.ts'
import type { RequestHeaders } from '../http/index.ts'

/** Null when the request has no body: the common GET costs no promise. */
export function readBody(req: IncomingMessage, headers: RequestHeaders | null, maxBytes: number): Promise<Buffer> | null {
  if (headers === null || (!headers.chunked && !(headers.contentLength !== undefined && headers.contentLength > 0))) return null
  if (req.destroyed) return Promise.reject(bodyNeverArrived())
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = []
    let size = 0
    const onData = (chunk: Buffer) => {
      size += chunk.length
      if (size > maxBytes) {
        // Not destroyed: the 413 still goes out, and respond.ts closes the connection after it.
        done()
        req.pause()
        reject(new GatewayError('payload_too_large', { detail: `The request body exceeds ${maxBytes} bytes.` }))
        return
      }
      chunks.push(chunk)
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
      req.removeListener('data', onData)
      req.removeListener('end', onEnd)
      req.removeListener('close', onClose)
      req.removeListener('error', onClose)
    }
    req.on('data', onData)
    req.on('end', onEnd)
    req.on('close', onClose)
    req.on('error', onClose)
    // The pipeline's wait for the body used 'readable', which leaves the stream paused.
    req.resume()
  })
}

function bodyNeverArrived(): GatewayError {
  return new GatewayError('request_timeout', { detail: 'The request body did not arrive before the connection closed.' })
}
