// An answer that ends before its request's body has all come (the gateway's refusal, or an
// upstream's 413 that read no further): the rest of the body is read by no one, so neither the
// HTTP/1.1 connection nor the HTTP/2 stream can be left as if it were done with.
import type { IncomingMessage, ServerResponse } from 'node:http'
import { constants as http2Constants, type Http2ServerResponse } from 'node:http2'
import { hasBody, type RequestHeaders } from './request-headers.ts'

/** The request has a body that has not all arrived yet. */
export function bodyStillArriving(req: IncomingMessage, headers: RequestHeaders | null): boolean {
  return !req.complete && hasBody(headers)
}

/**
 * An answer ended before its request's body came: the stream is reset with NO_ERROR (RFC 9113
 * §8.1) once the answer is out (node:http2 sends the RST_STREAM after the answer's frames), so the
 * client stops sending and the stream closes. node:http2 does it itself only for a body never read;
 * the pipeline waits for bodies ('readable'), and a stream whose body never came stayed
 * half-closed for ever, its connection never idle (20 such connections held max_connections).
 * Call it after res.end().
 */
export function resetAfterAnswer(res: ServerResponse): void {
  const stream = (res as unknown as Http2ServerResponse).stream
  if (!stream.closed && !stream.destroyed) stream.close(http2Constants.NGHTTP2_NO_ERROR)
}
