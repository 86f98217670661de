import { answerPolicyApplies, connectionNamed, HOP_BY_HOP, NEVER_HOP_BY_HOP, passedOn, VIA_HTTP_1_1, type AnswerPolicy, type ViaEntries } from '../http/index.ts'
import { holdsSentValue } from './credentials.ts'
import type { Upstream } from './pools.ts'

/**
 * The upstream's response headers without the hop-by-hop ones (RFC 9110 §7.6.1) and without those
 * that hold a credential the gateway sent it (`credentials`, the upstream's, and `sent`, the headers
 * added for this request alone: credentials.ts holdsSentValue) or the token of the gateway's Via
 * entries (`policy.via`), with the
 * gateway's Via entry, our X-Request-Id and the gateway's answer fields (`answerHeaders`, RateLimit), each over an upstream
 * field of the same name: on a limited route the client reads the gateway's limits. What the
 * gateway owns in the answer (its CORS, its cookies) is http/answer-headers.ts's.
 */
export function responseHeaders(headers: Record<string, string | string[] | undefined>, requestId: string, policy: AnswerPolicy & { readonly via: ViaEntries }, answerHeaders: readonly string[] | null, credentials: readonly string[], sent: readonly string[] | null): Record<string, string | string[]> {
  const applies = answerPolicyApplies(policy)
  const connection = headers.connection
  const named = connection === undefined ? null : connectionNamed(connection)
  // The Via token is withheld as a credential is: an upstream that echoed the request's Via (a debug
  // header, a proxy before the app copying it back) told every client the token by which the loop
  // check knows the gateway's own entries, and forged ones would count (a probe).
  const token = policy.via.token
  const out: Record<string, string | string[]> = {}
  for (const name in headers) {
    const value = headers[name]
    if (value === undefined || HOP_BY_HOP.has(name) || (named !== null && named.has(name) && !NEVER_HOP_BY_HOP.includes(name))) continue
    // An upstream that echoed the injected credential (a debug header, a WWW-Authenticate quoting
    // the token it refused) handed its client what only the gateway holds (a probe): the lines that hold it go.
    let shown: string | string[] | null = value
    if (holdsAny(value, credentials, sent, token)) {
      shown = withoutCredentials(name, value, credentials, sent, token)
      if (shown === null) continue
    }
    const kept = applies ? passedOn(name, shown, policy) : shown
    if (kept !== undefined) out[name] = kept
  }
  // RFC 9110 §7.6.3: the upstream's answer came over HTTP/1.1 (undici's), after its own Via entries.
  const via = out.via
  out.via = via === undefined ? VIA_HTTP_1_1 : typeof via === 'string' ? `${via}, ${VIA_HTTP_1_1}` : [...via, VIA_HTTP_1_1]
  out['x-request-id'] = requestId
  if (answerHeaders !== null) for (let i = 0; i < answerHeaders.length; i += 2) out[answerHeaders[i] as string] = answerHeaders[i + 1] as string
  return out
}

/**
 * Whether the value holds one of the credentials, a value of the headers added for this request
 * (`sent`: credentials.ts holdsSentValue) or the Via `token`, as sent or percent-encoded: an upstream puts what
 * it echoes in a URL (a Location's query, a Link) encoded, `+` `/` `=` of a base64 token as %2B %2F
 * %3D, and its client had only to decode it (a probe). Decoded once more for each level of encoding
 * (up to MAX_DECODINGS), in either hex case, wholly or in part. Only a value with a `%` is decoded.
 */
function holdsAny(value: string | string[], credentials: readonly string[], sent: readonly string[] | null, token: string): boolean {
  let text = typeof value === 'string' ? value : value.join('\n')
  for (let decodings = 0; ; decodings++) {
    if (text.includes(token) || credentials.some((credential) => text.includes(credential)) || (sent !== null && holdsSentValue(text, sent))) return true
    if (decodings === MAX_DECODINGS || !text.includes('%')) return false
    const decoded = percentDecoded(text)
    if (decoded === text) return false
    text = decoded
  }
}

/** Levels of percent-encoding looked through (a URL in a query parameter, encoded again). */
const MAX_DECODINGS = 3

const PERCENT_ESCAPE = /%[0-9A-Fa-f]{2}/g

/** RFC 3986 §2.1 escapes decoded: as UTF-8 where they are, else each as its byte (Latin-1, as a header value is read). */
function percentDecoded(text: string): string {
  try {
    return decodeURIComponent(text.replace(/%(?![0-9A-Fa-f]{2})/g, '%25'))
  } catch {
    return text.replace(PERCENT_ESCAPE, (escape) => String.fromCharCode(Number.parseInt(escape.slice(1), 16)))
  }
}

/** An auth-scheme, the token a challenge begins with (RFC 9110 §11.3). */
const AUTH_SCHEME = /^\s*([!#$%&'*+.^_`|~0-9A-Za-z-]+)/

/**
 * The field's lines without those that hold a credential; null when none is left. A Set-Cookie
 * withheld whole took the answer's other cookies with it, its session's too (a probe). A
 * WWW-Authenticate line keeps its challenge's scheme: RFC 9110 §15.5.2, a 401 MUST carry its
 * challenge, and without it the client could not tell which scheme the upstream asks for (a probe).
 */
function withoutCredentials(name: string, value: string | string[], credentials: readonly string[], sent: readonly string[] | null, token: string): string | string[] | null {
  const lines = (typeof value === 'string' ? [value] : value).flatMap((line) => {
    if (!holdsAny(line, credentials, sent, token)) return [line]
    const scheme = name === 'www-authenticate' ? AUTH_SCHEME.exec(line)?.[1] : undefined
    return scheme === undefined || holdsAny(scheme, credentials, sent, token) ? [] : [scheme]
  })
  return lines.length === 0 ? null : typeof value === 'string' ? (lines[0] as string) : lines
}

/** An absolute URL's scheme and authority: what a Location must begin with to name one of the targets. */
const ORIGIN_PART = /^[a-z][a-z0-9+.-]*:\/\/[^/?#\\]*/i

/**
 * A Location that names one of the upstream's targets under its base path, as the path on the
 * gateway it stands for (nginx's proxy_redirect default). An upstream builds absolute URLs from the
 * Host it was sent, its target's: its redirects sent the client to an internal address (a probe).
 * A relative reference (RFC 9110 §10.2.2), so that the client's own Host names nothing here; one that
 * would begin `//` or `/\` (another host, to a browser) is left as it came. Anything else as it is.
 * Only for a route that forwards its own path: an upstream_path rewrite has no way back.
 */
export function gatewayLocation(location: string, upstream: Pick<Upstream, 'targets' | 'basePath'>): string {
  const origin = ORIGIN_PART.exec(location)?.[0]
  if (origin === undefined) return location
  let named: string
  try {
    named = new URL(origin).origin
  } catch {
    return location
  }
  if (!upstream.targets.some((target) => target.url === named)) return location
  let rest = location.slice(origin.length)
  const base = upstream.basePath
  if (base !== '') {
    if (!rest.startsWith(base) || !/^(?:[/?#]|$)/.test(rest.slice(base.length))) return location
    rest = rest.slice(base.length)
  }
  if (!rest.startsWith('/')) rest = `/${rest}`
  return rest.startsWith('//') || rest.startsWith('/\\') ? location : rest
}

/**
 * An answer's Location as gatewayLocation makes it, a repeated one (a list) too: RFC 9110 allows one,
 * but the gateway does not pick one for the client, and each passed as it came named the internal address.
 */
export function gatewayLocations(location: string | string[], upstream: Pick<Upstream, 'targets' | 'basePath'>): string | string[] {
  return typeof location === 'string' ? gatewayLocation(location, upstream) : location.map((one) => gatewayLocation(one, upstream))
}

/** A Set-Cookie's Path attribute (RFC 6265 §5.2.4), its value in group 2. */
const COOKIE_PATH = /(;\s*path\s*=\s*)([^;]*?)(?=\s*(?:;|$))/i

/**
 * Set-Cookie lines whose Path lies under the upstream's base path, on the gateway's path it stands
 * for (nginx's proxy_cookie_path): an upstream scopes its cookies to where it is mounted (Path=/v1,
 * as Tomcat does), the client never sees that prefix, and its browser never sent them back (a probe).
 * Any other Path as it is. Only for a route that forwards its own path, as gatewayLocation.
 */
export function gatewayCookiePaths(value: string | string[], basePath: string): string | string[] {
  if (basePath === '') return value
  const mapped = (line: string) => line.replace(COOKIE_PATH, (whole, before: string, path: string) => {
    if (path !== basePath && !path.startsWith(`${basePath}/`)) return whole
    return `${before}${path.slice(basePath.length) || '/'}`
  })
  return typeof value === 'string' ? mapped(value) : value.map(mapped)
}
