// The Authorization header's bearer token (RFC 6750 §2.1: `Bearer`, any case, one or more spaces,
// the token). The gateway's identity stage and the admin API both read it here; each answers the
// refusals in its own words.

/** Why there is no bearer token; `scheme` is the scheme used instead, for `other-scheme`. */
export interface NoBearerToken {
  readonly problem: 'missing' | 'other-scheme' | 'malformed'
  readonly scheme: string
}

const BEARER = /^Bearer[ \t]+([^\s]+)[ \t]*$/i
const MISSING: NoBearerToken = Object.freeze({ problem: 'missing', scheme: '' })
const MALFORMED: NoBearerToken = Object.freeze({ problem: 'malformed', scheme: 'Bearer' })

/** The token, or why there is none: no header (or a blank one), another scheme, or not `Bearer <token>`. */
export function bearerToken(authorization: string | undefined): string | NoBearerToken {
  if (authorization === undefined || authorization.trim() === '') return MISSING
  const match = BEARER.exec(authorization)
  if (match) return match[1] as string
  const scheme = authorization.split(/\s/, 1)[0] ?? ''
  return /^bearer$/i.test(scheme) ? MALFORMED : { problem: 'other-scheme', scheme }
}

/**
 * The gateway's own API keys (`bk_<id>_<secret>`) may come as bearer tokens too. The prefix is
 * reserved: such a token is an API key, never an OAuth token to verify or introspect, and never
 * sent upstream.
 */
export const API_KEY_PREFIX = 'bk_'
const API_KEY_BEARER = /^[Bb][Ee][Aa][Rr][Ee][Rr][ \t]+bk_/

/** `Authorization: Bearer bk_…`. Anchored and short: it reads a few bytes, however long the token. */
export function isApiKeyBearer(authorization: string | undefined): boolean {
  return authorization !== undefined && API_KEY_BEARER.test(authorization)
}
