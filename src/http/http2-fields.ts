// Fields HTTP/2 carries once at most: node:http2 refuses an answer that repeats one
// (ERR_HTTP2_HEADER_SINGLE_VALUE), the list its own (checked against Node 24 by
// test/unit/http/http2-fields.test.ts). An HTTP/1.1 upstream may repeat them (an app and its
// nginx each adding X-Content-Type-Options), which an HTTP/1.1 client takes.
export const HTTP2_SINGLE_VALUE_FIELDS: ReadonlySet<string> = new Set([
  'access-control-allow-credentials', 'access-control-max-age', 'access-control-request-method', 'age', 'authorization',
  'content-encoding', 'content-language', 'content-length', 'content-location', 'content-md5', 'content-range', 'content-type',
  'date', 'dnt', 'etag', 'expires', 'from', 'host', 'if-match', 'if-modified-since', 'if-none-match', 'if-range',
  'if-unmodified-since', 'last-modified', 'location', 'max-forwards', 'proxy-authorization', 'range', 'referer', 'retry-after',
  'tk', 'upgrade-insecure-requests', 'user-agent', 'x-content-type-options',
])

/** Keeps the first value of each single-value field an answer repeats, for an HTTP/2 client (in place). */
export function keepFirstOfSingleValues(headers: Record<string, string | string[]>): void {
  for (const name in headers) {
    const value = headers[name]
    if (Array.isArray(value) && HTTP2_SINGLE_VALUE_FIELDS.has(name)) headers[name] = value[0] as string
  }
}
