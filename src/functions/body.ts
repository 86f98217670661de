// A function gets the request body whole (the event holds it as a string), so it is read to its end
// here, bounded by max_body_bytes and by what one event may hold: a chunked body that grows past it
// is refused with 413 like one that declares its length (the pipeline refused those already); over
// HTTP/2, by request_timeout too (readWholeBody). The pipeline has waited for the body's first
// window; a slow rest holds only this request's connection, not a worker.
import type { IncomingMessage } from 'node:http'
import { GatewayError } from '../errors/index.ts'
import { hasBody, type RequestHeaders } from '../http/index.ts'
import { bodyTooLarge, readWholeBody } from '../request/index.ts'
import { utf8BytesOver } from './answer-size.ts'

/**
 * The most a function's event may hold, in bytes of its JSON: Lambda's limit on a synchronous
 * invocation's request (6 MB, "Request must be smaller than 6291456 bytes"), which handlers written
 * for it keep under. Fixed, whatever max_body_bytes says: the event is one string in a worker whose
 * heap is `memory`, and one allocation far past that limit aborts the whole process (a 60 MB body
 * to a 64 MB function, with max_body_bytes raised for an upload route, did: probe finding).
 */
export const MAX_EVENT_BYTES = 6_291_456

/** The most a function's request body may be: max_body_bytes, within MAX_EVENT_BYTES. */
export function maxFunctionBody(maxBodyBytes: number): number {
  return Math.min(maxBodyBytes, MAX_EVENT_BYTES)
}

/** Null when the request has no body: the common GET costs no promise. */
export function readBody(req: IncomingMessage, headers: RequestHeaders | null, maxBodyBytes: number, deadline: number | null, counted: { bytesIn: number }): Promise<Buffer> | null {
  if (!hasBody(headers)) return null
  const maxBytes = maxFunctionBody(maxBodyBytes)
  return readWholeBody(req, { maxBytes, deadline, counted, tooLarge: () => (maxBytes < maxBodyBytes ? eventTooLarge(`its body exceeds ${maxBytes} bytes`) : bodyTooLarge(maxBytes)) })
}

/** The event's JSON over MAX_EVENT_BYTES (a body near it, as base64, or with many headers): 413 too. */
export function eventOversized(event: string): GatewayError | null {
  return utf8BytesOver(event, MAX_EVENT_BYTES) ? eventTooLarge(`its event (the body${event.endsWith('"isBase64Encoded":true}') ? ' as base64' : ''}, the headers and the rest) exceeds ${MAX_EVENT_BYTES} bytes`) : null
}

function eventTooLarge(what: string): GatewayError {
  return new GatewayError('payload_too_large', { detail: `The request is too large for a function: ${what}, Lambda's limit on a synchronous invocation's request.` })
}
