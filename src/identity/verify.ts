// A bearer token → a verified Identity, or the SPEC 401/503 code that says why not.
//
// The token's `iss` picks the issuer (exact match only), and then only that issuer's keys and
// rules apply: its algorithm allow-list (never `none`, never HMAC), never a key the token brings
// in its own header (`jwk`, `jku`, `x5u`, `x5c`), `exp` always required, `nbf`/`iat` with the
// clock tolerance, an audience it was issued for, the required claims. jose's errors are
// translated here, where they enter our code. jose selects the key; the signature is checked with
// node:crypto (jws.ts says why) and the claims here, with jose's semantics.
import { decodeJwt, decodeProtectedHeader, errors as jose, type CompactJWSHeaderParameters, type JWTPayload, type JWTVerifyGetKey, type ProtectedHeaderParameters } from 'jose'
import type { IssuerConfig } from '../config/index.ts'
import { GatewayError, type ErrorCode } from '../errors/index.ts'
import type { Identity } from '../gateway/context.ts'
import type { Logger } from '../telemetry/logger.ts'
import { describeDrift, findDrift } from './drift.ts'
import { CoolingDown, describeFetchError, type IssuerKeys } from './issuers.ts'
import { toKeyObject, verifySignature, type IssuerKey } from './jws.ts'
import { createTokenCache } from './token-cache.ts'

const EMBEDDED_KEY_PARAMETERS = ['jwk', 'jku', 'x5u', 'x5c'] as const

export interface VerifierOptions {
  issuers: readonly IssuerConfig[]
  keys: ReadonlyMap<string, IssuerKeys>
  maxTokenBytes: number
  cacheEntries: number
  logger: Logger
  now?: () => number
}

export interface TokenVerifier {
  /** Throws GatewayError (401 codes, 400 for ambiguous requests, 503 when keys cannot be had). */
  verify(authorization: string | undefined, query: string): Promise<Identity>
}

interface IssuerRule {
  config: IssuerConfig
  keys: IssuerKeys
  algorithms: Set<string>
}

export function createTokenVerifier(options: VerifierOptions): TokenVerifier {
  const { maxTokenBytes, logger } = options
  const now = options.now ?? Date.now
  const byIss = new Map<string, IssuerRule>()
  for (const config of options.issuers) {
    const keys = options.keys.get(config.name)
    if (keys) byIss.set(config.issuer, { config, keys, algorithms: new Set(config.algorithms) })
  }
  const configuredIssuers = [...byIss.keys()]
  const cache = createTokenCache<Identity>(options.cacheEntries)
  const driftLogged = new Map<string, number>()

  async function verify(authorization: string | undefined, query: string): Promise<Identity> {
    if (query !== '' && hasAccessTokenParameter(query)) {
      throw new GatewayError('bad_request', {
        detail: 'Access tokens in the query string are not accepted: send them in the Authorization header.',
        headers: { 'www-authenticate': 'Bearer error="invalid_request"' },
      })
    }
    const token = bearerToken(authorization, maxTokenBytes)
    const nowMs = now()
    const cached = cache.get(token, nowMs)
    if (cached) return cached

    let header: ProtectedHeaderParameters
    let claims: JWTPayload
    try {
      header = decodeProtectedHeader(token)
      claims = decodeJwt(token)
    } catch {
      throw unauthorized('malformed_token', 'The token is not a well-formed JWT (three base64url parts, JSON header and claims).')
    }
    const iss = claims.iss
    if (typeof iss !== 'string') throw unauthorized('claim_missing', 'The token has no iss claim, so no issuer can be chosen.')
    const rule = byIss.get(iss)
    if (!rule) throw unknownIssuer(iss)

    const alg = String(header.alg)
    if (!rule.algorithms.has(alg)) {
      throw unauthorized('algorithm_not_allowed', `Algorithm ${alg} is not allowed for issuer "${rule.config.name}" (allowed: ${rule.config.algorithms.join(', ')}).`)
    }
    for (const parameter of EMBEDDED_KEY_PARAMETERS) {
      if (parameter in header) {
        throw unauthorized('malformed_token', `The token's header carries its own key material (${parameter}); keys are only taken from the issuer's JWKS.`)
      }
    }
    // RFC 7515 §4.1.11: extensions we do not implement (b64: false, …) must be refused.
    if ('crit' in header) throw unauthorized('malformed_token', 'The token names critical header extensions (crit), which are not supported.')

    const getKey = rule.keys.getKey
    if (!getKey) throw keysUnavailable(rule)
    let candidates: IssuerKey[]
    try {
      candidates = await candidateKeys(getKey, header, token)
    } catch (err) {
      throw translate(err, rule)
    }
    const dot = token.lastIndexOf('.')
    const signingInput = token.slice(0, dot)
    const signature = token.slice(dot + 1)
    if (!candidates.some((key) => verifySignature(alg, toKeyObject(key), signingInput, signature))) {
      throw unauthorized('signature_invalid', `The token's signature does not verify with issuer "${rule.config.name}"'s key.`)
    }
    checkClaims(claims, rule.config, nowMs)
    const toleranceSec = rule.config.clock_tolerance / 1000
    const identity = identityFromClaims(rule.config, claims)
    // A cached verification lives at most one key refresh: a key removed from the issuer's JWKS
    // stops being honoured for cached tokens on the same schedule as for new ones.
    const expiresAtMs = Math.min((identity.expiresAt + toleranceSec) * 1000, nowMs + rule.config.jwks_refresh_interval)
    cache.set(token, identity, expiresAtMs)
    return identity
  }

  function unknownIssuer(iss: string): GatewayError {
    const drift = findDrift(iss, configuredIssuers)
    if (!drift) return unauthorized('issuer_unknown', `No configured issuer has iss "${iss}".`)
    const detail = describeDrift(iss, drift)
    const key = `${iss}\n${drift.configured}`
    if (now() - (driftLogged.get(key) ?? 0) > 60_000) {
      driftLogged.set(key, now())
      logger.warn({ token_iss: iss, configured_issuer: drift.configured, differences: drift.differences }, 'issuer drift')
    }
    return unauthorized('issuer_unknown', detail)
  }

  return { verify }
}

function hasAccessTokenParameter(query: string): boolean {
  return /(?:^|&)access_token=/.test(query)
}

/** RFC 6750 §2.1: `Bearer` (any case), one space or more, the token. */
function bearerToken(authorization: string | undefined, maxTokenBytes: number): string {
  if (authorization === undefined || authorization.trim() === '') {
    throw new GatewayError('missing_token', { detail: 'This route needs a bearer token (Authorization: Bearer …).', headers: { 'www-authenticate': 'Bearer' } })
  }
  const match = /^Bearer[ \t]+([^\s]+)[ \t]*$/i.exec(authorization)
  if (!match) {
    const scheme = authorization.split(/\s/, 1)[0] ?? ''
    if (!/^bearer$/i.test(scheme)) {
      throw new GatewayError('missing_token', { detail: `This route needs a bearer token; the request used the ${scheme.slice(0, 20)} scheme.`, headers: { 'www-authenticate': 'Bearer' } })
    }
    throw unauthorized('malformed_token', 'The Authorization header is not "Bearer <token>".')
  }
  const token = match[1] as string
  if (token.length > maxTokenBytes) throw unauthorized('malformed_token', `The token is longer than ${maxTokenBytes} bytes.`)
  return token
}

function unauthorized(code: ErrorCode, detail: string): GatewayError {
  return new GatewayError(code, { detail, headers: { 'www-authenticate': `Bearer error="invalid_token", error_description="${headerSafe(detail)}"` } })
}

/** A quoted-string (RFC 9110 §5.6.4) without quotes, backslashes or non-ASCII. */
function headerSafe(text: string): string {
  return text.replace(/["\\]/g, "'").replace(/[^\x20-\x7e]/g, '?')
}

function keysUnavailable(rule: IssuerRule, cause?: unknown): GatewayError {
  const why = cause !== undefined ? describeFetchError(cause) : (rule.keys.lastError ?? 'still loading')
  return new GatewayError('identity_provider_unavailable', {
    detail: `No signing keys could be had for issuer "${rule.config.name}" yet: ${why}.`,
    headers: { 'retry-after': '5' },
    cause,
  })
}

/** The issuer's key for this token; several when the token names no kid and several keys fit. */
async function candidateKeys(getKey: JWTVerifyGetKey, header: ProtectedHeaderParameters, token: string): Promise<IssuerKey[]> {
  try {
    return [await getKey(header as CompactJWSHeaderParameters, { payload: '', signature: '', protected: token.slice(0, token.indexOf('.')) })]
  } catch (err) {
    if (!(err instanceof jose.JWKSMultipleMatchingKeys)) throw err
    const keys: IssuerKey[] = []
    for await (const key of err as unknown as AsyncIterable<IssuerKey>) keys.push(key)
    return keys
  }
}

/** Key lookup failures: a kid the issuer lacks is the token's problem; a fetch failure is the provider's. */
function translate(err: unknown, rule: IssuerRule): GatewayError {
  if (err instanceof jose.JWKSNoMatchingKey || (err instanceof CoolingDown && rule.keys.hasKeys)) {
    return unauthorized('key_not_found', `Issuer "${rule.config.name}" has no key with this token's kid (its keys were refreshed, the key is gone or was never there).`)
  }
  if (err instanceof jose.JOSENotSupported) return unauthorized('malformed_token', 'The token is not a valid JWS for this issuer.')
  return keysUnavailable(rule, err)
}

/**
 * RFC 7519 §4.1 with the issuer's rules: exp always, nbf/iat with the tolerance, aud, required
 * claims. `onlyRequired` checks just the required claims (for claims written by hand in explain).
 */
export function checkClaims(claims: JWTPayload, config: IssuerConfig, nowMs: number, onlyRequired = false): void {
  const now = nowMs / 1000
  const tolerance = config.clock_tolerance / 1000
  if (onlyRequired) return checkRequiredClaims(claims, config)
  for (const name of ['exp', 'nbf', 'iat'] as const) {
    if (claims[name] !== undefined && typeof claims[name] !== 'number') throw unauthorized('malformed_token', `The token's ${name} claim is not a number.`)
  }
  if (claims.exp === undefined) throw unauthorized('claim_missing', 'The token has no exp claim (exp is always required).')
  if (claims.exp <= now - tolerance) throw unauthorized('token_expired', `The token expired at ${isoTime(claims.exp)} (clock tolerance ${tolerance}s).`)
  if (claims.nbf !== undefined && claims.nbf > now + tolerance) {
    throw unauthorized('token_not_yet_valid', `The token is not valid before ${isoTime(claims.nbf)} (clock tolerance ${tolerance}s).`)
  }
  if (claims.iat !== undefined && claims.iat > now + tolerance) {
    throw unauthorized('token_not_yet_valid', `The token was issued in the future (iat ${isoTime(claims.iat)}), beyond the ${tolerance}s clock tolerance.`)
  }
  const aud = claims.aud
  const audiences = typeof aud === 'string' ? [aud] : Array.isArray(aud) ? aud : []
  // Opt-in, as AWS API Gateway's JWT authorizer does for Cognito: no aud at all, then client_id.
  if (aud === undefined && config.client_id_audience && typeof claims.client_id === 'string') audiences.push(claims.client_id)
  if (!audiences.some((a) => config.audiences.includes(a))) {
    const named = audiences.length > 0 ? `audience ${audiences.join(', ')}` : 'no audience'
    throw unauthorized('audience_mismatch', `The token is for ${named}, not ${config.audiences.join(' or ')}.`)
  }
  checkRequiredClaims(claims, config)
  if (claims.sub !== undefined && typeof claims.sub !== 'string') throw unauthorized('malformed_token', 'The token\'s sub claim is not a string.')
}

function checkRequiredClaims(claims: JWTPayload, config: IssuerConfig): void {
  for (const name of config.required_claims) {
    if (claims[name] === undefined) throw unauthorized('claim_missing', `The token has no ${name} claim, which issuer "${config.name}" requires.`)
  }
}

/** The Identity the rest of the pipeline sees; claim_missing when the claims name no principal. */
export function identityFromClaims(config: IssuerConfig, payload: JWTPayload): Identity {
  // client_id (RFC 9068), azp (OIDC), appid (Entra ID v1 tokens), cid (Okta).
  const clientId = [payload.client_id, payload.azp, payload.appid, payload.cid].find((v): v is string => typeof v === 'string') ?? null
  const sub = typeof payload.sub === 'string' ? payload.sub : clientId
  if (sub === null) throw unauthorized('claim_missing', 'The token has no sub, client_id or azp claim: it names no principal.')
  return Object.freeze({
    issuerName: config.name,
    iss: config.issuer,
    sub,
    clientId,
    claims: Object.freeze(payload),
    expiresAt: typeof payload.exp === 'number' ? payload.exp : 0,
  })
}

function isoTime(seconds: unknown): string {
  return typeof seconds === 'number' ? new Date(seconds * 1000).toISOString() : String(seconds)
}
