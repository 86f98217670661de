import { answerPolicyApplies, connectionNamed, HOP_BY_HOP, passedOn, VIA_HTTP_1_1, type AnswerPolicy } from '../http/index.ts'

/**
 * The upstream's response headers without the hop-by-hop ones (RFC 9110 §7.6.1) and without those
 * that hold a credential the gateway sent it (`credentials`: credentials.ts withheldFromAnswer), with the
 * gateway's Via entry, our X-Request-Id and the gateway's answer fields (`answerHeaders`, RateLimit), each over an upstream
 * field of the same name: on a limited route the client reads the gateway's limits. What the
 * gateway owns in the answer (its CORS, its cookies) is http/answer-headers.ts's.
 */
export function responseHeaders(headers: Record<string, string | string[] | undefined>, requestId: string, policy: AnswerPolicy, answerHeaders: readonly string[] | null, credentials: readonly string[]): Record<string, string | string[]> {
  const applies = answerPolicyApplies(policy)
  const connection = headers.connection
  const named = connection === undefined ? null : connectionNamed(connection)
  const out: Record<string, string | string[]> = {}
  for (const name in headers) {
    const value = headers[name]
    if (value === undefined || HOP_BY_HOP.has(name) || (named !== null && named.has(name))) continue
    // An upstream that echoed the injected credential (a debug header, a WWW-Authenticate quoting
    // the token it refused) handed its client what only the gateway holds (a probe).
    if (credentials.length > 0 && holdsAny(value, credentials)) continue
    const kept = applies ? passedOn(name, value, policy) : value
    if (kept !== undefined) out[name] = kept
  }
  // RFC 9110 §7.6.3: the upstream's answer came over HTTP/1.1 (undici's), after its own Via entries.
  const via = out.via
  out.via = via === undefined ? VIA_HTTP_1_1 : typeof via === 'string' ? `${via}, ${VIA_HTTP_1_1}` : [...via, VIA_HTTP_1_1]
  out['x-request-id'] = requestId
  if (answerHeaders !== null) for (let i = 0; i < answerHeaders.length; i += 2) out[answerHeaders[i] as string] = answerHeaders[i + 1] as string
  return out
}

function holdsAny(value: string | string[], credentials: readonly string[]): boolean {
  const text = typeof value === 'string' ? value : value.join('\n')
  return credentials.some((credential) => text.includes(credential))
}
