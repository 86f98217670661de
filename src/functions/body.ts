// A function gets the request body whole (the event holds it as a string), so it is read to its end
// here, bounded by max_body_bytes: a chunked body that grows past it is refused with 413 like one
// that declares its length (the pipeline refused those already); over HTTP/2, by request_timeout too
// (readWholeBody). The pipeline has waited for the body's first window; a slow rest holds only this
// request's connection, not a worker.
import type { IncomingMessage } from 'node:http'
import type { RequestHeaders } from '../http/index.ts'
import { bodyTooLarge, readWholeBody } from '../request/index.ts'

/** Null when the request has no body: the common GET costs no promise. */
export function readBody(req: IncomingMessage, headers: RequestHeaders | null, maxBytes: number, deadline: number | null, counted: { bytesIn: number }): Promise<Buffer> | null {
  if (headers === null || (!headers.chunked && !(headers.contentLength !== undefined && headers.contentLength > 0))) return null
  return readWholeBody(req, { maxBytes, deadline, counted, tooLarge: () => bodyTooLarge(maxBytes) })
}
