import { HOP_BY_HOP, varyWithOrigin, withoutSetCookies } from '../http/index.ts'

/** What a route decides about its target's answer headers (ForwardSettings has both). */
export interface ResponsePolicy {
  /** The gateway answers CORS for this route: the target's Access-Control-* are dropped, and Vary keeps Origin. */
  ownsCors: boolean
  /** The gateway's own cookies (the sign-in session's): a Set-Cookie naming one is dropped, never set by a target. */
  withheldCookies: ReadonlySet<string>
}

/**
 * The upstream's response headers without the hop-by-hop ones (RFC 9110 §7.6.1), with our
 * X-Request-Id and the gateway's answer fields (`answerHeaders`, RateLimit), each over an upstream
 * field of the same name: on a limited route the client reads the gateway's limits. `ownsCors`: the gateway answers CORS for this route (routes[].cors), so the
 * upstream's Access-Control-* headers are dropped (the gateway's, set on the response already,
 * stay) and its Vary keeps Origin, or a shared cache would hand one origin's answer to another.
 */
export function responseHeaders(headers: Record<string, string | string[] | undefined>, requestId: string, policy: ResponsePolicy, answerHeaders: readonly string[] | null): Record<string, string | string[]> {
  const { ownsCors, withheldCookies } = policy
  const connection = headers.connection
  const named = connection === undefined ? null : new Set(String(connection).toLowerCase().split(',').map((t) => t.trim()))
  const out: Record<string, string | string[]> = {}
  for (const name in headers) {
    const value = headers[name]
    if (value === undefined || HOP_BY_HOP.has(name) || (named !== null && named.has(name))) continue
    if (ownsCors && name.startsWith('access-control-')) continue
    if (name === 'set-cookie' && withheldCookies.size > 0) {
      const kept = withoutSetCookies(value, withheldCookies)
      if (kept.length > 0) out[name] = kept
      continue
    }
    out[name] = value
  }
  if (ownsCors && out.vary !== undefined) out.vary = varyWithOrigin(out.vary)
  out['x-request-id'] = requestId
  if (answerHeaders !== null) for (let i = 0; i < answerHeaders.length; i += 2) out[answerHeaders[i] as string] = answerHeaders[i + 1] as string
  return out
}

