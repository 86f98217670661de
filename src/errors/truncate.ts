// Values a client controls (a token's iss or typ, a path, a User-Agent) are repeated in problem
// details, log lines and audit records. Bounded there, so that one request cannot write kilobytes
// into each (issue 22: 35,000 requests with a 6 KB iss added 184 MB to the audit log), and marked,
// so that a reader knows the value went on.

/** How much of a client's value a problem detail or a log line repeats (and an audit record or a span of a subject). */
export const MAX_ECHOED_CHARS = 256

/**
 * How much of a request's path and of its method a span keeps (telemetry/tracing.ts): what the
 * audit record keeps (audit/fields.ts, which has no runtime imports for the console's build, so it
 * writes the numbers itself; test/unit/audit/fields.test.ts holds the two equal).
 */
export const CLIENT_REQUEST_BOUNDS = { path: 2048, method: 32 } as const

/** `value` up to `maxChars` characters, then `…(truncated, N chars)` naming its full length. */
export function truncateClientValue(value: string, maxChars = MAX_ECHOED_CHARS): string {
  if (value.length <= maxChars) return value
  // Never cut a surrogate pair in two: half of one is not a character (and PostgreSQL refuses it).
  const last = value.charCodeAt(maxChars - 1)
  const end = last >= 0xd800 && last <= 0xdbff ? maxChars - 1 : maxChars
  return `${value.slice(0, end)}…(truncated, ${value.length} chars)`
}
