// CORS for one route (routes[].cors; the Fetch standard's CORS protocol). The gateway owns it on a
// route that configures it: it answers preflights itself, before any credential is asked for
// (browsers never send one with a preflight), grants only the origins, methods and headers listed,
// and puts the CORS headers on every answer to a listed origin, the gateway's own refusals
// included, so a browser page can read why it was refused.
//
// A listed origin is compared exactly, as browsers serialize it (scheme, lower-case host, the port
// only when it is not the scheme's default): a prefix or suffix match is how CORS allow-lists are
// usually bypassed (`https://lookerstudio.google.com.evil.example`). `null` (the origin of
// sandboxed frames and local files, which any page can arrange to send) is never accepted.
import { truncateClientValue } from '../errors/index.ts'

export interface CorsRules {
  /** Serialized origins, or `*` (any origin). */
  readonly origins: readonly string[]
  readonly methods: readonly string[]
  /** Request headers a page may send (lower case). */
  readonly headers: readonly string[]
  /** Response headers a page may read beyond the CORS-safelisted ones. */
  readonly exposeHeaders: readonly string[]
  readonly credentials: boolean
  readonly maxAgeSeconds: number
  /** The setting that lists the origins, named in a refusal (default routes[].cors.origins). */
  readonly originsSetting?: string
}

export type PreflightAnswer = { readonly ok: true; readonly headers: Readonly<Record<string, string>> } | { readonly ok: false; readonly reason: string }

export interface CorsPolicy {
  /** Whether a request from this origin gets the CORS headers (and a preflight may be granted). */
  allows(origin: string): boolean
  /** The answer to a preflight: its headers, or why it is refused (an origin, method or header not listed). */
  preflight(origin: string, method: string, requestHeaders: string | undefined): PreflightAnswer
  /** The CORS headers of an answer to an allowed origin, as a flat [name, value, …] list. */
  responseHeaders(origin: string): readonly string[]
}

export type ParsedOrigin = { ok: true; value: string } | { ok: false; message: string }

/** An origin as a browser sends it in `Origin`: `https://host[:port]`, nothing after. Or `*`. */
export function parseOrigin(text: string): ParsedOrigin {
  if (text === '*') return { ok: true, value: text }
  if (text === 'null') {
    return { ok: false, message: 'origin "null" is what sandboxed frames and local files send, and any page can arrange to: it cannot be allowed' }
  }
  let url: URL
  try {
    url = new URL(text)
  } catch {
    return { ok: false, message: `invalid origin "${text}": write it as a browser sends it, e.g. https://lookerstudio.google.com` }
  }
  if (url.protocol !== 'https:' && url.protocol !== 'http:') return { ok: false, message: `origin "${text}" is not http:// or https://` }
  // URL takes `*` in a host, and no browser sends one: a pattern here matched nothing, silently.
  if (url.hostname.includes('*')) {
    return { ok: false, message: `origin "${text}" is a pattern: origins are compared exactly, as browsers send them; list each one (https://app.example.com), or "*" for any` }
  }
  // url.origin drops a default port, a path and a trailing slash, and lower-cases the host: a
  // config value that differs from it would never equal what a browser sends.
  if (url.origin !== text) {
    return { ok: false, message: `origin "${text}" would never match: browsers send "${url.origin}" (no path, no trailing slash, lower case, no default port)` }
  }
  return { ok: true, value: url.origin }
}

export function corsPolicy(rules: CorsRules): CorsPolicy {
  const anyOrigin = rules.origins.includes('*')
  const origins = new Set(rules.origins)
  const methods = new Set(rules.methods)
  // HEAD is GET without the body: the route that takes GET takes it, and so do the policies (gateway/router.ts).
  if (methods.has('GET')) methods.add('HEAD')
  const headers = new Set(rules.headers.map((h) => h.toLowerCase()))
  const allowMethods = rules.methods.join(', ')
  const allowHeaders = rules.headers.map((h) => h.toLowerCase()).join(', ')
  const exposed = rules.exposeHeaders.join(', ')
  // With credentials, `*` is not a wildcard to browsers (Fetch §3.3.5): the origin is echoed.
  const echo = !anyOrigin || rules.credentials

  const allows = (origin: string) => anyOrigin ? origin !== 'null' : origins.has(origin)

  function responseHeaders(origin: string): string[] {
    const out = ['access-control-allow-origin', echo ? origin : '*']
    if (rules.credentials) out.push('access-control-allow-credentials', 'true')
    if (exposed !== '') out.push('access-control-expose-headers', exposed)
    return out
  }

  return {
    allows,
    responseHeaders,
    preflight(origin, method, requestHeaders) {
      if (!allows(origin)) return { ok: false, reason: `Origin ${quoted(origin)} is not allowed on this route (${rules.originsSetting ?? 'routes[].cors.origins'}).` }
      if (!methods.has(method)) {
        return { ok: false, reason: `Origin ${quoted(origin)} may not send ${quoted(method)} requests on this route (allowed: ${allowMethods}).` }
      }
      for (const name of headerList(requestHeaders)) {
        if (!headers.has(name)) {
          return { ok: false, reason: `Origin ${quoted(origin)} may not send the ${quoted(name)} header on this route (allowed: ${allowHeaders || 'none'}).` }
        }
      }
      const out: Record<string, string> = {}
      const list = responseHeaders(origin)
      for (let i = 0; i < list.length; i += 2) out[list[i] as string] = list[i + 1] as string
      out['access-control-allow-methods'] = allowMethods
      if (allowHeaders !== '') out['access-control-allow-headers'] = allowHeaders
      out['access-control-max-age'] = String(rules.maxAgeSeconds)
      // A shared cache must keep one preflight answer per origin and per request asked about.
      out.vary = 'Origin, Access-Control-Request-Method, Access-Control-Request-Headers'
      return { ok: true, headers: out }
    },
  }
}

/** `Access-Control-Request-Headers`: a comma-separated list of names, lower case (Fetch §4.8). */
function headerList(value: string | undefined): string[] {
  if (value === undefined) return []
  return value.split(',').map((name) => name.trim().toLowerCase()).filter((name) => name !== '')
}

/** A client's value in a detail: bounded, and JSON-quoted so it cannot pass for the sentence around it. */
function quoted(value: string): string {
  return JSON.stringify(truncateClientValue(value, 128))
}

/** A target's Vary with Origin in it: on a route whose CORS the gateway owns, answers differ by Origin whatever the target says. */
export function varyWithOrigin(vary: string | string[]): string {
  const text = Array.isArray(vary) ? vary.join(', ') : vary
  const fields = text.split(',').map((f) => f.trim().toLowerCase())
  return fields.includes('origin') || fields.includes('*') ? text : `${text}, Origin`
}

/**
 * The CORS of the gateway's public documents (OAuth metadata, their JWKS): any page may read them,
 * and a browser client's preflight is granted. The MCP SDK sends MCP-Protocol-Version with each
 * fetch of them, which makes the browser ask first; without a grant the fetch failed.
 */
export const PUBLIC_DOCUMENT_CORS: CorsPolicy = corsPolicy({
  origins: ['*'],
  methods: ['GET', 'HEAD'],
  headers: ['mcp-protocol-version'],
  exposeHeaders: [],
  credentials: false,
  maxAgeSeconds: 600,
})
