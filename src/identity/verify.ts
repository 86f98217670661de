// A bearer token → a verified Identity, or the SPEC 401/503 code that says why not.
//
// The token's `iss` picks the issuer (exact match only), and then only that issuer's keys and
// rules apply: its algorithm allow-list (never `none`, never HMAC), never a key the token brings
// in its own header (`jwk`, `jku`, `x5u`, `x5c`), a `typ` of an access token (token-types.ts),
// `exp` always required, `nbf`/`iat` with the clock tolerance, an audience it was issued for, the
// required claims. jose's errors are translated here, where they enter our code. jose selects the
// key; the signature is checked with node:crypto (jws.ts says why) and the claims here, with
// jose's semantics.
//
// Everything before the signature check reads attacker-controlled bytes, so it is linear in the
// token and bounded (issue 22): client values repeated in a detail or a log line are truncated.
import { hash } from 'node:crypto'
import type { CompactJWSHeaderParameters, JWTPayload, JWTVerifyGetKey, ProtectedHeaderParameters } from 'jose'
import { jose } from './jose.ts'
import { createLru } from '../collections/index.ts'
import { EXCHANGE_ISSUER, type IssuerConfig } from '../config/index.ts'
import { GatewayError, oauthErrorText, truncateClientValue, type ErrorCode } from '../errors/index.ts'
import { bearerToken } from '../http/index.ts'
import type { Identity } from '../request/index.ts'
import type { Logger } from '../telemetry/index.ts'
import { ClientCertFieldError } from './client-cert-field.ts'
import { describeDrift, findDrift, type Drift } from './drift.ts'
import type { Introspector } from './introspection.ts'
import { CoolingDown, describeFetchError, type IssuerKeys } from './issuers.ts'
import { actorNameProblem, principalNameProblem } from './principal-name.ts'
import { decodeCompactJwt, MAX_JSON_DEPTH, toKeyObject, verifySignature, type DecodedJwt, type IssuerKey } from './jws.ts'
import { carriesUserClaims, delegatedIdentity, exchangedIdentity, ownIssuerKeys, untrustedProviderRefusal, type OwnTokens } from './own-tokens.ts'
import { tokenTypeCheck, type TokenTypeCheck } from './token-types.ts'

const EMBEDDED_KEY_PARAMETERS = ['jwk', 'jku', 'x5u', 'x5c'] as const

/** At most one "issuer drift" warning per configured issuer in this long. */
const DRIFT_WARNING_INTERVAL_MS = 60_000

export interface VerifierOptions {
  issuers: readonly IssuerConfig[]
  keys: ReadonlyMap<string, IssuerKeys>
  /** The keys' registry's count of keys found withdrawn (IssuerRegistry.keyRemovalCount); none: keys that never change. */
  keyRemovalCount?: () => number
  maxTokenBytes: number
  cacheEntries: number
  logger: Logger
  /**
   * The issuer that introspects (at most one): it gets every token that is not a JWT, and the JWTs
   * naming it when it verifies none itself (no jwks_uri).
   */
  introspection?: Introspector | null
  /** The tokens the gateway issues itself by token exchange, when it does. */
  own?: OwnTokens | null
  now?: () => number
}

export interface TokenVerifier {
  /**
   * Throws GatewayError (401 codes, 400 for ambiguous requests, 503 when keys cannot be had).
   * `certificate(from)`: the client's, which a certificate-bound token must come with
   * (senderConstraint); without it such a token is refused. A function made once and the request
   * it reads apart, so that a token bound to nothing costs no closure a request.
   */
  verify<From>(authorization: string | undefined, query: string, certificate?: PresentedCertificate<From>, from?: From): Promise<Identity>
}

/**
 * The DER of the client certificate the request `from` presents (the TLS connection's, or the one
 * a trusted TLS-terminating proxy forwards: x509.ts, presentedCertificate), undefined for none;
 * throws ClientCertFieldError for a forwarded field it cannot read. Asked only for a
 * certificate-bound token.
 */
export type PresentedCertificate<From> = (from: From) => Buffer | undefined

/** What the checks before any key need of an issuer (checkWithoutKey). */
export interface KeyFreeRule {
  config: IssuerConfig
  algorithms: ReadonlySet<string>
  acceptsTokenType: TokenTypeCheck
}

export function keyFreeRule(config: IssuerConfig): KeyFreeRule {
  return { config, algorithms: new Set(config.algorithms), acceptsTokenType: tokenTypeCheck(config.token_types) }
}

interface IssuerRule extends KeyFreeRule {
  keys: IssuerKeys
  /** The gateway's own issuer (own-tokens.ts). */
  own: boolean
}

export function createTokenVerifier(options: VerifierOptions): TokenVerifier {
  const { maxTokenBytes, logger } = options
  const introspection = options.introspection ?? null
  const now = options.now ?? Date.now
  const keyRemovalCount = options.keyRemovalCount ?? (() => 0)
  const byIss = new Map<string, IssuerRule>()
  for (const config of options.issuers) {
    const keys = options.keys.get(config.name)
    if (keys) byIss.set(config.issuer, { ...keyFreeRule(config), keys, own: false })
  }
  const own = options.own
  if (own) byIss.set(own.config.issuer, { ...keyFreeRule(own.config), keys: ownIssuerKeys(own), own: true })
  // The introspecting issuer has no entry of its own when it verifies no JWTs (no jwks_uri), yet an
  // `act` naming it names one of its agents, and an exchanged token's `idp` its user (whose trust
  // rules are read again under the running config: access/roles.ts), at the MCP endpoint too, whose
  // verifier has no introspector.
  const namedIssuers = new Map(options.issuers.map((config) => [config.issuer, config.name]))
  const issuerNameOf = (iss: string) => byIss.get(iss)?.config.name ?? namedIssuers.get(iss) ?? (introspection?.issuer.issuer === iss ? introspection.issuer.name : undefined)
  const configuredIssuers = [...byIss.keys()]
  // Every issuer of the config, its keys held here or not (an introspecting one without jwks_uri has
  // none, and the MCP endpoint's verifier has no introspector): those an exchanged token's user and
  // agent may still come from (untrustedProviderRefusal).
  const providers = new Set([...options.issuers.map((config) => config.issuer), ...(introspection ? [introspection.issuer.issuer] : [])])
  // Verified tokens, so a dashboard sending the same token a thousand times pays for one signature
  // check. Keyed by the whole token string (no encoding two tokens could share), bounded
  // (server.token_cache_entries, least recently used out first); an entry never outlives its token
  // nor one key refresh (below).
  const cache = createLru<Identity>(options.cacheEntries)
  // Dropped whole when a fetch of any issuer's keys (a refresh, or a token's unknown kid) finds one gone (IssuerRegistry.keyRemovalCount):
  // a rare event, and one compare a request where a per-entry key reference would cost every hit.
  let removalsSeen = keyRemovalCount()
  // Keyed by the configured issuer, never by the token's iss: one entry per issuer in the config,
  // however many bogus issuers arrive (keyed by iss, it grew by every distinct one, for good).
  const driftWarnings = new Map<string, { at: number; suppressed: number }>()
  // An introspected Identity (one object while its answer is cached) → the same Identity with its
  // actor, so that a cached answer keeps one object and its roles are resolved once (roles.ts).
  const withActor = new WeakMap<Identity, Identity>()

  // A token's `cnf` is checked at every request, cached verification or not (it is the request's,
  // not the token's), at each of the three ways out, after the token verified and once it is cached:
  // no await or closure more for a token bound to nothing.
  async function verify<From>(authorization: string | undefined, query: string, certificate?: PresentedCertificate<From>, from?: From): Promise<Identity> {
    if (query !== '' && hasAccessTokenParameter(query)) {
      throw new GatewayError('bad_request', {
        detail: 'Access tokens in the query string are not accepted: send them in the Authorization header.',
        headers: { 'www-authenticate': 'Bearer error="invalid_request"' },
      })
    }
    const token = bearerTokenOf(authorization)
    const nowMs = now()
    if (keyRemovalCount() !== removalsSeen) {
      cache.clear()
      removalsSeen = keyRemovalCount()
    }
    const cached = cache.get(token, nowMs)
    if (cached) {
      if (cached.claims.cnf !== undefined) senderConstraint(cached.claims.cnf, certificate, from)
      return cached
    }

    const checked = checkWithoutKey(token, {
      maxTokenBytes,
      ruleFor: (iss) => byIss.get(iss),
      unknownIssuer,
      // Not a JWT, or a JWT of the introspecting issuer when it verifies none itself.
      introspects: (iss) => introspection !== null && (iss === null || introspection.issuer.issuer === iss),
    })
    if (checked === null) return introspected(introspection as Introspector, token, certificate, from)
    const { decoded, rule, alg } = checked
    const { header, claims } = decoded

    // Another worker found a key of this issuer withdrawn: the keys are fetched again before they verify (issuers.ts keyWithdrawals).
    const catchingUp = rule.keys.catchUp?.()
    if (catchingUp !== undefined) await catchingUp
    const getKey = rule.keys.getKey ?? (await rule.keys.keySetOnceTried())
    if (!getKey) throw keysUnavailable(rule)
    let candidates: IssuerKey[]
    try {
      candidates = await candidateKeys(getKey, header, decoded.encodedHeader)
    } catch (err) {
      throw translate(err, rule)
    }
    const { signingInput, signature } = decoded
    if (!candidates.some((key) => verifySignature(alg, toKeyObject(key), signingInput, signature))) {
      throw unauthorized('signature_invalid', `The token's signature does not verify with issuer "${rule.config.name}"'s key.`)
    }
    checkClaims(claims, rule.config, nowMs)
    const toleranceSec = rule.config.clock_tolerance / 1000
    const verified = identityFromClaims(rule.config, claims)
    const identity = rule.own ? exchangedIdentity(verified, claims, issuerNameOf) : delegatedIdentity(verified, claims, issuerNameOf)
    if (identity === null) throw namesNoActor()
    checkActorNames(identity)
    const untrusted = rule.own ? untrustedProviderRefusal(identity, (iss) => providers.has(iss)) : null
    if (untrusted !== null) throw unauthorized('issuer_unknown', untrusted)
    // A cached verification lives at most one key refresh, and is dropped when a refresh finds a
    // key gone (above): a key removed from the issuer's JWKS stops being honoured for cached
    // tokens when it does for new ones.
    const expiresAtMs = Math.min((identity.expiresAt + toleranceSec) * 1000, nowMs + rule.config.jwks_refresh_interval)
    cache.set(token, identity, expiresAtMs)
    if (identity.claims.cnf !== undefined) senderConstraint(identity.claims.cnf, certificate, from)
    return identity
  }

  /**
   * An opaque token's identity, with the agent its `act` names decided as a JWT's is: the probe
   * found the provider's on-behalf-of token decided as the user alone, and audited with no actor.
   */
  async function introspected<From>(introspector: Introspector, token: string, certificate: PresentedCertificate<From> | undefined, from: From | undefined): Promise<Identity> {
    const identity = await introspector.introspect(token)
    let acting = withActor.get(identity)
    if (acting === undefined) {
      const delegated = delegatedIdentity(identity, identity.claims, issuerNameOf)
      if (delegated === null) throw namesNoActor()
      checkActorNames(delegated)
      acting = delegated
      withActor.set(identity, acting)
    }
    if (acting.claims.cnf !== undefined) senderConstraint(acting.claims.cnf, certificate, from)
    return acting
  }

  function unknownIssuer(iss: string): GatewayError {
    const drift = findDrift(iss, configuredIssuers)
    if (drift) warnOfDrift(iss, drift)
    return issuerUnknown(iss, drift)
  }

  /** A misconfiguration deserves a warning, not one line per request: at most one a minute per issuer. */
  function warnOfDrift(iss: string, drift: Drift): void {
    const at = now()
    const last = driftWarnings.get(drift.configured)
    if (last !== undefined && at - last.at < DRIFT_WARNING_INTERVAL_MS) {
      last.suppressed++
      return
    }
    driftWarnings.set(drift.configured, { at, suppressed: 0 })
    logger.warn({
      token_iss: truncateClientValue(iss),
      configured_issuer: drift.configured,
      differences: drift.differences,
      suppressed_since_last_warning: last?.suppressed ?? 0,
    }, 'issuer drift')
  }

  return { verify }
}

export interface KeyFreeChecks<R extends KeyFreeRule> {
  /** server.max_token_bytes */
  maxTokenBytes: number
  ruleFor(iss: string): R | undefined
  /** The issuer_unknown refusal for an iss no rule has. */
  unknownIssuer(iss: string): GatewayError
  /** Whether a token goes to introspection instead: iss null when it is no JWT at all. */
  introspects?(iss: string | null): boolean
}

/**
 * Every check of a bearer token that needs no key, in the order the gateway makes them: its
 * length, a well-formed JWT, an `iss` that names an issuer, the header (an allowed alg, no key of
 * its own, no crit, an access token's typ). Throws the 401 the gateway answers; null for a token
 * introspection checks instead. explain runs it on a pasted token: the probe found explain
 * allowing tokens the gateway refused for these.
 */
export function checkWithoutKey<R extends KeyFreeRule>(token: string, checks: KeyFreeChecks<R>): { decoded: DecodedJwt; rule: R; alg: string } | null {
  if (token.length > checks.maxTokenBytes) throw unauthorized('malformed_token', `The token is longer than ${checks.maxTokenBytes} bytes.`)
  const decoded = decodeCompactJwt(token)
  if (!decoded && checks.introspects?.(null)) return null
  if (!decoded) {
    throw unauthorized('malformed_token', `The token is not a well-formed JWT (three base64url parts; a header and claims that are JSON objects nested at most ${MAX_JSON_DEPTH} deep).`)
  }
  const { header, claims } = decoded
  const iss = claims.iss
  if (typeof iss !== 'string') throw unauthorized('claim_missing', 'The token has no iss claim, so no issuer can be chosen.')
  const rule = checks.ruleFor(iss)
  if (!rule && checks.introspects?.(iss)) return null
  if (!rule) throw checks.unknownIssuer(iss)

  const alg = header.alg
  if (typeof alg !== 'string') throw unauthorized('malformed_token', 'The token\'s header has no alg (RFC 7515 §4.1.1: a string).')
  if (!rule.algorithms.has(alg)) {
    throw unauthorized('algorithm_not_allowed', `Algorithm ${truncateClientValue(alg, 32)} is not allowed for issuer "${rule.config.name}" (allowed: ${rule.config.algorithms.join(', ')}).`)
  }
  for (const parameter of EMBEDDED_KEY_PARAMETERS) {
    if (parameter in header) {
      throw unauthorized('malformed_token', `The token's header carries its own key material (${parameter}); keys are only taken from the issuer's JWKS.`)
    }
  }
  // RFC 7515 §4.1.11: extensions we do not implement (b64: false, …) must be refused.
  if ('crit' in header) throw unauthorized('malformed_token', 'The token names critical header extensions (crit), which are not supported.')
  if (!rule.acceptsTokenType(header.typ)) throw wrongTokenType(header.typ, rule.config)
  return { decoded, rule, alg }
}

/** issuer_unknown, naming the configured issuer an iss nearly matches (drift.ts). */
export function issuerUnknown(iss: string, drift: Drift | undefined): GatewayError {
  return unauthorized('issuer_unknown', drift ? describeDrift(iss, drift) : `No configured issuer has iss "${truncateClientValue(iss)}".`)
}

const ACCESS_TOKEN_PARAMETER = /(?:^|&)access_token=/

/**
 * Whether the query carries an access_token parameter (RFC 6750 §2.3), its name written plain or
 * percent-encoded: access%5Ftoken= is access_token= to the upstream's parser (every form decoder
 * decodes names), and passed the refusal, the token reaching the upstream (found by a probe).
 * Decoding is tried only for a query with a % in it, on names with one.
 */
export function hasAccessTokenParameter(query: string): boolean {
  return ACCESS_TOKEN_PARAMETER.test(query) || (query.includes('%') && namesAccessTokenEncoded(query))
}

function namesAccessTokenEncoded(query: string): boolean {
  for (const pair of query.split('&')) {
    const end = pair.indexOf('=')
    if (end === -1 || pair.lastIndexOf('%', end) === -1) continue
    try {
      if (decodeURIComponent(pair.slice(0, end)) === 'access_token') return true
    } catch {
      // Not percent-encoding (a stray %): no decoder reads it as access_token either.
    }
  }
  return false
}

function bearerTokenOf(authorization: string | undefined): string {
  const token = bearerToken(authorization)
  if (typeof token !== 'string') {
    if (token.problem === 'missing') {
      throw new GatewayError('missing_token', { detail: 'This route needs a bearer token (Authorization: Bearer …).', headers: { 'www-authenticate': 'Bearer' } })
    }
    if (token.problem === 'other-scheme') {
      throw new GatewayError('missing_token', { detail: `This route needs a bearer token; the request used the ${token.scheme.slice(0, 20)} scheme.`, headers: { 'www-authenticate': 'Bearer' } })
    }
    throw unauthorized('malformed_token', 'The Authorization header is not "Bearer <token>".')
  }
  return token
}

/**
 * A sender-constrained token (its `cnf` binds it to a key its holder proves possession of) is no
 * bearer token: taken as one, a stolen DPoP- or certificate-bound token let its thief in, the very
 * theft binding exists to defeat (found by a probe). Bound to a client certificate (RFC 8705 §3:
 * `x5t#S256`, the SHA-256 of its DER), it counts with a request that presents that certificate (over
its TLS connection, or forwarded by a trusted proxy that terminated TLS, RFC 9440);
 * a DPoP-bound one (`jkt`) is sent with the DPoP scheme (RFC 9449 §7.1), which the gateway does not
 * take; any other binding is one it cannot check. Never a token's own refusal to keep (an
 * introspection answer, a cached verification): the same token may come over another connection.
 */
function senderConstraint<From>(cnf: unknown, presented: PresentedCertificate<From> | undefined, from: From | undefined): void {
  const expected = boundCertificate(cnf)
  let der: Buffer | undefined
  try {
    der = presented?.(from as From)
  } catch (err) {
    if (!(err instanceof ClientCertFieldError)) throw err
    throw unauthorized('client_cert_required', `The token is bound to a client certificate (cnf.x5t#S256, RFC 8705), and the forwarded one cannot be read: ${err.message}`)
  }
  if (der === undefined) {
    throw unauthorized('client_cert_required', 'The token is bound to a client certificate (cnf.x5t#S256, RFC 8705): send it over a TLS connection presenting that certificate.')
  }
  if (hash('sha256', der, 'base64url') !== expected) {
    throw unauthorized('client_cert_required', 'The token is bound to another client certificate than the one this request presents (cnf.x5t#S256, RFC 8705).')
  }
}

/**
 * The certificate a token's `cnf` binds it to (its `x5t#S256`), or the refusal every request
 * carrying it gets whatever its connection: a binding the gateway cannot check, or a thumbprint no
 * certificate has. explain reads it too: it sees no connection, so it names the certificate needed.
 */
export function boundCertificate(cnf: unknown): string {
  const members = typeof cnf === 'object' && cnf !== null && !Array.isArray(cnf) ? Object.keys(cnf) : null
  if (members === null) throw unauthorized('malformed_token', 'The token\'s cnf claim is not an object (RFC 7800 §3.1).')
  if ('jkt' in (cnf as object)) {
    throw unauthorized('malformed_token', 'The token is bound to a DPoP key (cnf.jkt): it is sent with the DPoP scheme (RFC 9449), which this gateway does not take, and as a bearer token proves nothing of its holder.')
  }
  const unchecked = members.filter((name) => name !== 'x5t#S256')
  if (unchecked.length > 0) {
    throw unauthorized('malformed_token', `The token is bound to a key the gateway cannot check (cnf.${truncateClientValue(unchecked[0] as string, 32)}): it is not a bearer token.`)
  }
  const expected = (cnf as Record<string, unknown>)['x5t#S256']
  if (typeof expected !== 'string') {
    throw unauthorized('client_cert_required', 'The token\'s cnf.x5t#S256 is no certificate thumbprint (RFC 8705 §3.1): no client certificate matches it.')
  }
  return expected
}

/** A 401 with RFC 6750's WWW-Authenticate naming the problem. */
export function unauthorized(code: ErrorCode, detail: string): GatewayError {
  return new GatewayError(code, { detail, headers: { 'www-authenticate': `Bearer error="invalid_token", error_description="${oauthErrorText(detail)}"` } })
}

/** An agent's names go where the principal's do (principal-name.ts): bounded as theirs are. */
function checkActorNames(identity: Identity): void {
  const problem = actorNameProblem(identity)
  if (problem !== null) throw unauthorized('malformed_token', problem)
}

/** The refusal of an `act` claim that names nobody, here and in explain (gateway/explain.ts). */
export const NAMES_NO_ACTOR = 'The token\'s act claim names no actor (RFC 8693 §4.1: an object with sub).'

function namesNoActor(): GatewayError {
  return unauthorized('malformed_token', NAMES_NO_ACTOR)
}

function keysUnavailable(rule: IssuerRule, cause?: unknown): GatewayError {
  const why = cause !== undefined ? describeFetchError(cause) : (rule.keys.lastError ?? 'still loading')
  return new GatewayError('identity_provider_unavailable', {
    detail: `No signing keys could be had for issuer "${rule.config.name}" yet: ${why}.`,
    headers: { 'retry-after': '5' },
    cause,
  })
}

/** RFC 7515 §4.1.9, RFC 8725 §3.11: another kind of JWT the provider signs is not an access token. */
function wrongTokenType(typ: unknown, config: IssuerConfig): GatewayError {
  const accepted = `token_types: ${config.token_types.join(', ')}`
  if (typ === undefined) return unauthorized('malformed_token', `The token has no typ, and issuer "${config.name}" accepts only typed tokens (${accepted}).`)
  const named = typeof typ === 'string' ? `"${truncateClientValue(typ, 64)}"` : `of type ${typeof typ}`
  return unauthorized('malformed_token', `The token's typ ${named} is not a kind of token issuer "${config.name}" accepts (${accepted}): ID tokens, logout tokens and other JWTs are not access tokens.`)
}

/** The issuer's key for this token; several when the token names no kid and several keys fit. */
async function candidateKeys(getKey: JWTVerifyGetKey, header: ProtectedHeaderParameters, encodedHeader: string): Promise<IssuerKey[]> {
  try {
    return [await getKey(header as CompactJWSHeaderParameters, { payload: '', signature: '', protected: encodedHeader })]
  } catch (err) {
    if (!(err instanceof jose().errors.JWKSMultipleMatchingKeys)) throw err
    const keys: IssuerKey[] = []
    for await (const key of err as unknown as AsyncIterable<IssuerKey>) {
      if (keys.length === MAX_KEYS_WITHOUT_KID) throw new TooManyKeysWithoutKid()
      keys.push(key)
    }
    return keys
  }
}

/**
 * A token with no kid is tried against each key of its algorithm, up to this many: a JWKS of 1,000
 * keys (a probe) made every token without a kid cost 1,000 signature checks, an unauthenticated
 * caller's way to spend the gateway's CPU. Providers publish a handful of keys at a time.
 */
const MAX_KEYS_WITHOUT_KID = 10

class TooManyKeysWithoutKid extends Error {}

/**
 * Key lookup failures: a kid the issuer lacks after a fetch that worked is the token's problem; a
 * fetch that failed, or the cool-down after one, is the provider's. The cool-down with cached keys
 * answered 401 "its keys were refreshed" though the last fetch had failed, between 503s for the
 * same token: a client could not tell "retry later" from "your token is bad" (a probe).
 */
function translate(err: unknown, rule: IssuerRule): GatewayError {
  if (err instanceof TooManyKeysWithoutKid) {
    return unauthorized('key_not_found', `The token names no kid, and issuer "${rule.config.name}" has more than ${MAX_KEYS_WITHOUT_KID} keys for its algorithm: a token must name its key.`)
  }
  if (err instanceof jose().errors.JWKSNoMatchingKey) {
    return unauthorized('key_not_found', `Issuer "${rule.config.name}" has no key with this token's kid (its keys were refreshed, the key is gone or was never there).`)
  }
  if (err instanceof CoolingDown && rule.keys.hasKeys) {
    return new GatewayError('identity_provider_unavailable', {
      detail: `Issuer "${rule.config.name}" has no cached key with this token's kid, and its keys cannot be fetched now: the last fetch failed moments ago${rule.keys.lastError ? ` (${rule.keys.lastError})` : ''}. Try again shortly.`,
      headers: { 'retry-after': String(Math.max(1, Math.ceil(rule.config.jwks_cooldown / 1000))) },
      cause: err,
    })
  }
  if (err instanceof jose().errors.JOSENotSupported) return unauthorized('malformed_token', 'The token is not a valid JWS for this issuer.')
  return keysUnavailable(rule, err)
}

/**
 * RFC 7519 §4.1 with the issuer's rules: exp always, nbf/iat with the tolerance, aud, required
 * claims. `written`: claims written by hand (explain's --claims) get the same checks of what they
 * carry, but an absent exp or aud is the writer's shorthand, not refused (the probe found explain
 * allowing an expired exp, a future nbf, another aud and a sub that is no string, which a token
 * with them is refused for).
 */
export function checkClaims(claims: JWTPayload, config: IssuerConfig, nowMs: number, written = false): void {
  if (written) return checkClaimValues(claims, config, nowMs, claims.aud !== undefined)
  if (claims.exp === undefined) throw unauthorized('claim_missing', 'The token has no exp claim (exp is always required).')
  checkClaimValues(claims, config, nowMs)
  // A token the gateway exchanged before it carried all the user's claims (idp_claims): statement
  // conditions would read only some of them, so it is refused, and the agent exchanges again.
  if (config.name === EXCHANGE_ISSUER && !carriesUserClaims(claims)) {
    throw unauthorized('malformed_token', 'The token has no idp_claims object: it was exchanged by an earlier version of the gateway. Exchange the user\'s token again.')
  }
}

/**
 * The claims of an introspection answer (RFC 7662 §2.2): as a JWT's, but `exp` may be absent (the
 * provider vouches for the token's life: it said `active`).
 */
export function checkIntrospectedClaims(claims: JWTPayload, config: IssuerConfig, nowMs: number): void {
  checkClaimValues(claims, config, nowMs)
}

function checkClaimValues(claims: JWTPayload, config: IssuerConfig, nowMs: number, checkAudience = true): void {
  const now = nowMs / 1000
  const tolerance = config.clock_tolerance / 1000
  const exp = numericDate(claims, 'exp')
  const nbf = numericDate(claims, 'nbf')
  const iat = numericDate(claims, 'iat')
  if (exp !== undefined && exp <= now - tolerance) throw unauthorized('token_expired', `The token expired at ${isoTime(exp)} (clock tolerance ${tolerance}s).`)
  if (nbf !== undefined && nbf > now + tolerance) {
    throw unauthorized('token_not_yet_valid', `The token is not valid before ${isoTime(nbf)} (clock tolerance ${tolerance}s).`)
  }
  if (iat !== undefined && iat > now + tolerance) {
    throw unauthorized('token_not_yet_valid', `The token was issued in the future (iat ${isoTime(iat)}), beyond the ${tolerance}s clock tolerance.`)
  }
  const aud = claims.aud
  // RFC 7519 §4.1.3: a string or an array of strings. Read as a list of anything, [1, "api"] was
  // taken, and [["api"]] refused as "for audience api, not api" (a probe).
  if (aud != null && typeof aud !== 'string' && !(Array.isArray(aud) && aud.every((a) => typeof a === 'string'))) {
    throw unauthorized('malformed_token', 'The token\'s aud claim is neither a string nor an array of strings (RFC 7519 §4.1.3).')
  }
  const audiences = typeof aud === 'string' ? [aud] : (aud ?? [])
  // Opt-in, as AWS API Gateway's JWT authorizer does for Cognito: no aud at all, then client_id.
  if (aud === undefined && config.client_id_audience && typeof claims.client_id === 'string') audiences.push(claims.client_id)
  if (checkAudience && !audiences.some((a) => config.audiences.includes(a))) {
    const named = audiences.length > 0 ? `audience ${truncateClientValue(audiences.join(', '))}` : 'no audience'
    // No audience at all: the gateway's own tokens where token_exchange.audiences lists only mcp.resource.
    const accepted = config.audiences.length > 0 ? config.audiences.join(' or ') : `any audience issuer "${config.name}" is accepted for here`
    throw unauthorized('audience_mismatch', `The token is for ${named}, not ${accepted}.`)
  }
  checkRequiredClaims(claims, config)
  if (claims.sub !== undefined && typeof claims.sub !== 'string') throw unauthorized('malformed_token', 'The token\'s sub claim is not a string.')
}

function checkRequiredClaims(claims: JWTPayload, config: IssuerConfig): void {
  for (const name of config.required_claims) {
    if (claims[name] === undefined || (name === 'sub' && !namesSomeone(claims.sub))) throw unauthorized('claim_missing', `The token has no ${name} claim, which issuer "${config.name}" requires.`)
  }
}

/** The Identity the rest of the pipeline sees; claim_missing when the claims name no principal. */
export function identityFromClaims(config: IssuerConfig, payload: JWTPayload): Identity {
  // client_id (RFC 9068), azp (OIDC), appid (Entra ID v1 tokens), cid (Okta).
  const clientId = [payload.client_id, payload.azp, payload.appid, payload.cid].find(namesSomeone) ?? null
  const sub = namesSomeone(payload.sub) ? payload.sub : clientId
  if (sub === null) throw unauthorized('claim_missing', 'The token has no sub, client_id or azp claim (an empty one counts as none): it names no principal.')
  const problem = principalNameProblem('sub', sub) ?? principalNameProblem('client_id', clientId)
  if (problem !== null) throw unauthorized('malformed_token', problem)
  return Object.freeze({
    issuerName: config.name,
    iss: config.issuer,
    sub,
    clientId,
    claims: Object.freeze(payload),
    expiresAt: typeof payload.exp === 'number' ? payload.exp : 0,
  })
}

/**
 * A claim that can name a principal: a string with more than whitespace. The probe found `sub: ""`
 * taken as a principal (ahead of client_id), so every such token shared one identity for limits
 * and the audit; an empty value is as absent.
 */
function namesSomeone(value: unknown): value is string {
  return typeof value === 'string' && value.trim() !== ''
}

/**
 * ECMAScript dates reach ±8.64e15 ms (the year 275760): a NumericDate (RFC 7519 §2, seconds) past
 * that names no time at all (new Date() of it is invalid, and toISOString() threw a 500).
 */
const MAX_NUMERIC_DATE_SECONDS = 8.64e12

/** `exp`, `nbf` or `iat`: undefined when absent; malformed_token when it is not a time. */
function numericDate(claims: JWTPayload, name: 'exp' | 'nbf' | 'iat'): number | undefined {
  const value: unknown = claims[name]
  if (value === undefined) return undefined
  if (typeof value !== 'number') throw unauthorized('malformed_token', `The token's ${name} claim is not a number (it is ${value === null ? 'null' : `a ${typeof value}`}).`)
  // JSON.parse reads 1e400 as Infinity; NaN cannot come from JSON but fails here too.
  if (!(Math.abs(value) <= MAX_NUMERIC_DATE_SECONDS)) {
    throw unauthorized('malformed_token', `The token's ${name} claim (${value}) is not a time: NumericDate seconds reach ±${MAX_NUMERIC_DATE_SECONDS} (RFC 7519 §2).`)
  }
  return value
}

function isoTime(seconds: number): string {
  return new Date(seconds * 1000).toISOString()
}
