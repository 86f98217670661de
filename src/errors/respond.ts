import type { ServerResponse } from 'node:http'
import { ERROR_CODES } from './codes.ts'
import type { GatewayError } from './gateway-error.ts'

/** RFC 9457 problem details. `type` is a URN per code: stable, and never dereferenced by clients. */
export function problemBody(err: GatewayError, requestId: string): string {
  return JSON.stringify({
    type: `urn:bouncer:error:${err.code}`,
    title: ERROR_CODES[err.code].title,
    status: err.status,
    code: err.code,
    detail: err.detail,
    request_id: requestId,
  })
}

/**
 * The only place an error becomes a response. When the upstream's headers have already been
 * sent the status can no longer change: the connection is cut so the client sees a truncated
 * response instead of a silently corrupted one. Returns the body bytes written.
 */
export function sendProblem(res: ServerResponse, err: GatewayError, requestId: string, headOnly = false): number {
  if (res.headersSent || res.destroyed) {
    res.destroy()
    return 0
  }
  const body = problemBody(err, requestId)
  const headers: Record<string, string | number> = {
    'content-type': 'application/problem+json',
    'content-length': Buffer.byteLength(body),
    'cache-control': 'no-store',
    'x-request-id': requestId,
  }
  if (err.headers) Object.assign(headers, err.headers)
  res.writeHead(err.status, headers)
  res.end(headOnly ? undefined : body)
  return headOnly ? 0 : Buffer.byteLength(body)
}
