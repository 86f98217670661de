import { HOP_BY_HOP } from '../http/index.ts'

/** The upstream's response headers without the hop-by-hop ones (RFC 9110 §7.6.1), with our X-Request-Id. */
export function responseHeaders(headers: Record<string, string | string[] | undefined>, requestId: string): Record<string, string | string[]> {
  const connection = headers.connection
  const named = connection === undefined ? null : new Set(String(connection).toLowerCase().split(',').map((t) => t.trim()))
  const out: Record<string, string | string[]> = {}
  for (const name in headers) {
    const value = headers[name]
    if (value === undefined || HOP_BY_HOP.has(name) || (named !== null && named.has(name))) continue
    out[name] = value
  }
  out['x-request-id'] = requestId
  return out
}
