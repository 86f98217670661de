// The original request a proxy asks about on the forward-auth endpoint (SPEC "Callers, added"):
// nginx's auth_request names it in X-Original-Method and X-Original-URI (the snippet sets them),
// Traefik's ForwardAuth and Caddy's forward_auth in X-Forwarded-Method and X-Forwarded-Uri (with
// X-Forwarded-Host), and Envoy's ext_authz sends it as it came, under a path prefix, with its own
// method. Exactly one of the three must describe it. Each proxy overwrites its own headers but
// passes the client's others on, so a client could add the other family (a Caddy client sending
// X-Original-URI: /public) to have a different request decided than the one forwarded: two
// descriptions are refused, never chosen between.
import { GatewayError } from '../errors/index.ts'

export interface DescribedRequest {
  method: string
  /** The request target as the client sent it (origin form, or absolute form with `host`). */
  target: string
  host: string | undefined
}

const TOKEN = /^[!#$%&'*+.^_`|~0-9A-Za-z-]{1,32}$/

/** An HTTP method as a request line can carry it: an RFC 9110 token (32 characters at most). */
export function isMethodToken(text: string): boolean {
  return TOKEN.test(text)
}
const LOWER_CASE = /[a-z]/

/**
 * `pathForm`: the target under the endpoint's path (`/.bouncer/auth/orders?x=1` → `/orders?x=1`),
 * null when the endpoint was asked at its own path; `method`: the asking request's own.
 */
export function describedRequest(rawHeaders: readonly string[], pathForm: string | null, method: string): DescribedRequest {
  const original = { method: single(rawHeaders, 'x-original-method'), uri: single(rawHeaders, 'x-original-uri') }
  const forwarded = { method: single(rawHeaders, 'x-forwarded-method'), uri: single(rawHeaders, 'x-forwarded-uri') }
  const nginx = original.method !== undefined || original.uri !== undefined
  const proxy = forwarded.method !== undefined || forwarded.uri !== undefined
  const described = [nginx, proxy, pathForm !== null].filter(Boolean).length
  if (described === 0) {
    throw refusal('Describe the original request: X-Original-Method and X-Original-URI (nginx), X-Forwarded-Method and X-Forwarded-Uri (Traefik, Caddy), or its path after /.bouncer/auth (Envoy).')
  }
  if (described > 1) {
    throw refusal('The original request is described more than once (X-Original-*, X-Forwarded-Method/-Uri, a path after /.bouncer/auth): a client may have added one; refused.')
  }
  if (pathForm !== null) return { method: validMethod(method), target: pathForm, host: undefined }
  const family = nginx ? original : forwarded
  const names = nginx ? ['X-Original-Method', 'X-Original-URI'] : ['X-Forwarded-Method', 'X-Forwarded-Uri']
  if (family.method === undefined || family.uri === undefined) {
    throw refusal(`${names[0]} and ${names[1]} describe the original request together; ${family.method === undefined ? names[0] : names[1]} is missing.`)
  }
  return { method: validMethod(family.method), target: family.uri, host: nginx ? undefined : single(rawHeaders, 'x-forwarded-host') }
}

/**
 * Does the described request open a WebSocket? Proxies do not pass the hop-by-hop Upgrade and
 * Connection on with their sub-request (nginx's auth_request drops them), but they pass
 * Sec-WebSocket-Key, which only a handshake carries (RFC 6455 §4.1). Without this, forward-auth
 * took a handshake for a plain GET: a session cookie's handshake from another origin got no CSRF
 * check, and the proxy opened the tunnel (cross-site WebSocket hijacking; an adversarial probe).
 */
export function describesWebSocket(rawHeaders: readonly string[]): boolean {
  for (let i = 0; i < rawHeaders.length; i += 2) {
    const name = rawHeaders[i] as string
    if (name.length === 17 && name.toLowerCase() === 'sec-websocket-key') return true
    if (name.length === 7 && name.toLowerCase() === 'upgrade' && /websocket/i.test(rawHeaders[i + 1] as string)) return true
  }
  return false
}

/** A header's one value; a second copy is ambiguous and refused. */
function single(rawHeaders: readonly string[], lowerName: string): string | undefined {
  let value: string | undefined
  for (let i = 0; i < rawHeaders.length; i += 2) {
    const name = rawHeaders[i] as string
    if (name.length !== lowerName.length || name.toLowerCase() !== lowerName) continue
    if (value !== undefined) throw refusal(`More than one ${name} header.`)
    value = (rawHeaders[i + 1] as string).trim()
  }
  return value
}

/** The gateway's own refusals for the methods it never forwards, the same for a described request. */
function validMethod(method: string): string {
  if (!TOKEN.test(method)) throw refusal('The original method is not an HTTP method.')
  // As for HTTP/2's :method (gateway/pipeline.ts): Caddy and Traefik (Go's server) take `delete`
  // from a client and describe it as is; statements name upper-case methods, so `delete` passed a
  // deny on DELETE, and ASP.NET or Werkzeug upstreams run it as DELETE (found by an adversarial probe).
  if (LOWER_CASE.test(method)) {
    throw refusal(`The original method "${method}" has lower-case letters: methods are case-sensitive, and every method the gateway routes is upper-case.`)
  }
  if (method === 'CONNECT') throw new GatewayError('bad_path', { detail: 'CONNECT tunnels are not supported.' })
  if (method === 'TRACK') throw refusal('TRACK is not accepted.')
  return method
}

function refusal(detail: string): GatewayError {
  return new GatewayError('bad_request', { detail })
}
