// Which kinds of JWT an issuer's tokens may be (`issuers[].token_types`, matched against the
// header's `typ`). A provider signs other JWTs with the same keys — ID tokens, logout tokens,
// security events — and without this check any of them would pass wherever its `aud` overlaps
// an access token's (RFC 8725 §3.11 "Use explicit typing"; RFC 9068 §4 for access tokens).

/** The `token_types` entry that accepts a token with no `typ` at all (most providers send none or "JWT"). */
const UNTYPED = 'untyped'

/** No media type is longer; a longer `typ` is refused without being lower-cased. */
const MAX_TYP_CHARS = 128

/**
 * RFC 7515 §4.1.9: media types compare case-insensitively, and a `typ` without "/" stands for
 * `application/<typ>` (so `at+jwt`, `AT+JWT` and `application/at+jwt` are one type).
 */
function mediaTypeOf(typ: string): string {
  const lower = typ.toLowerCase()
  return lower.includes('/') ? lower : `application/${lower}`
}

/** Does a token whose header has this `typ` (undefined: none) have one of the configured types? */
export type TokenTypeCheck = (typ: unknown) => boolean

export function tokenTypeCheck(tokenTypes: readonly string[]): TokenTypeCheck {
  const acceptsUntyped = tokenTypes.includes(UNTYPED)
  const accepted = new Set(tokenTypes.filter((t) => t !== UNTYPED).map(mediaTypeOf))
  return function acceptsTokenType(typ) {
    if (typ === undefined) return acceptsUntyped
    return typeof typ === 'string' && typ.length <= MAX_TYP_CHARS && accepted.has(mediaTypeOf(typ))
  }
}
