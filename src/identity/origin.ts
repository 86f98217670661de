// The gateway's own origin as a browser sees it, and the check that a request carried by an ambient
// credential (one the browser sends by itself, whatever page made the request: a session cookie, a
// client certificate) comes from a page of that origin: cross-site request forgery, and its
// WebSocket form, cross-site WebSocket hijacking (a handshake is a GET, and the tunnel it opens
// carries whatever the page sends, as the caller).
import { GatewayError, truncateClientValue } from '../errors/index.ts'
import type { HostAllowList } from '../http/index.ts'
import { rawHeader, type CredentialInput } from './authenticate.ts'

const HOST = /^([A-Za-z0-9.-]+|\[[0-9A-Fa-f:.]+\])(:\d{1,5})?$/

/** Methods that change nothing (RFC 9110 §9.2.1): any page may send them; what it reads of the answer is CORS's business. */
const SAFE_METHODS = new Set(['GET', 'HEAD', 'OPTIONS'])

/**
 * A request that another origin's page must not make with the browser's ambient credential: one
 * that changes state (a form post needs no preflight, so nothing of CORS stops it), or a WebSocket
 * handshake (a GET, but the tunnel it opens carries whatever the page sends).
 */
export function forgeable(input: CredentialInput): boolean {
  return !SAFE_METHODS.has(input.method ?? 'GET') || input.upgrade === true
}

export interface OriginSettings {
  /** sign_in.base_url: the gateway's public URL, when it is set. */
  readonly baseUrl?: string
  /** server.hosts: without base_url, the origin is built only on a host listed there (when any is). */
  readonly hosts?: HostAllowList
}

/**
 * base_url's origin, else the scheme and Host of the request (X-Forwarded-Proto/-Host from a
 * trusted proxy). `who` begins the refusal of a Host that cannot be one ("Sign-in").
 */
export function publicOrigin(input: CredentialInput, settings: OriginSettings, who: string): string {
  if (settings.baseUrl !== undefined) return new URL(settings.baseUrl).origin
  const headers = input.headers
  const trusted = input.viaTrustedProxy === true
  const host = (trusted ? headers?.forwardedHost : undefined) ?? headers?.host
  if (host === undefined || !HOST.test(host)) throw new GatewayError('bad_request', { detail: `${who} needs a valid Host header (or set sign_in.base_url).` })
  // Redirect URIs and the CSRF origin are built on this host: a client's Host must not choose them.
  const hosts = settings.hosts
  if (hosts !== undefined && hosts.patterns.length > 0 && !hosts.matches(host)) {
    throw new GatewayError('bad_request', { detail: `${who} answers for the names in server.hosts, not ${JSON.stringify(truncateClientValue(host))} (or set sign_in.base_url).` })
  }
  const forwarded = trusted ? headers?.forwardedProto?.toLowerCase() : undefined
  const scheme = forwarded === 'https' || forwarded === 'http' ? forwarded : input.secure ? 'https' : 'http'
  return `${scheme}://${host.toLowerCase()}`
}

/**
 * A state-changing request (or a WebSocket handshake) carried by an ambient credential (`by`: "session
 * cookie") must name the gateway's origin in Origin (or, with Origin null or absent, be
 * `Sec-Fetch-Site: same-origin` by the browser's word), or it is refused 403 cors_origin_denied.
 * `required`: a request without Origin is refused too (a session cookie: only browsers hold one, and
 * they send Origin with every such request); otherwise it is let through, as no browser's (a client
 * certificate is also a service's, which sends none).
 */
export function checkOrigin(input: CredentialInput, own: string, by: string, required: boolean): void {
  const origin = rawHeader(input.rawHeaders, 'origin')
  // A page whose Referrer-Policy is no-referrer (helmet's default) makes the browser send
  // `Origin: null` with its own same-origin form posts, and every one was refused (found by the
  // people probe). Sec-Fetch-Site is the browser's word, which no page can set (a forbidden header),
  // that the request comes from this origin, redirects included; browsers send it to https and loopback origins.
  if ((origin === undefined || origin === 'null') && rawHeader(input.rawHeaders, 'sec-fetch-site') === 'same-origin') return
  const what = input.upgrade === true ? 'A WebSocket handshake' : `A ${input.method ?? ''} request`
  if (origin === undefined) {
    if (!required) return
    throw new GatewayError('cors_origin_denied', { detail: `${what} signed in by ${by} needs an Origin header naming ${own} (cross-site request forgery protection).` })
  }
  if (origin.toLowerCase() !== withoutDefaultPort(own.toLowerCase())) {
    throw new GatewayError('cors_origin_denied', { detail: `${what} signed in by ${by} must come from ${own}, not from another origin (cross-site request forgery protection).` })
  }
}

/**
 * An origin as a browser sends it: without its scheme's default port. A Host or X-Forwarded-Host of
 * `example.com:443` (nginx's `$host:$server_port`) made the gateway's own origin one no browser names,
 * and every session POST was refused (found by the CORS probe). Only the comparison drops it: the
 * sign-in's redirect URI stays as the Host made it, as registered at the provider.
 */
function withoutDefaultPort(origin: string): string {
  if (origin.startsWith('https://') && origin.endsWith(':443')) return origin.slice(0, -4)
  if (origin.startsWith('http://') && origin.endsWith(':80')) return origin.slice(0, -3)
  return origin
}
