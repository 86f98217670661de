// Opaque access tokens (RFC 7662): a token that is not a JWT cannot be checked locally, so the
// issuer with `introspection` is asked whether it is active, with the gateway's own client
// credentials (client_secret_basic, RFC 6749 §2.3.1).
//
// - An active answer is cached for at most `introspection.cache`, and never past the token's
//   `exp`: a revocation at the provider is seen within the cache time, an expiry at once. The
//   cache time counts from when the question was sent, so an answer that arrives late is not
//   trusted longer than one that came at once.
// - `active: false` (revoked, expired, or unknown to the provider) is 401 token_revoked, and is
//   kept for `introspection.negative_cache` (5 s), so a client retrying a dead token in a loop (a
//   dashboard's tiles after a revocation) costs the provider one question per period (per worker
//   with server.workers), not one per request. An active answer the issuer's rules refuse
//   (audience, token type, required claims, expired) is kept the same way, with its own words; not
//   one valid later (nbf ahead), and never a provider error, which is asked again. Kept in a cache
//   of its own, keyed by the token's SHA-256 (a key of fixed size, whatever the token's length):
//   unknown tokens sent by the thousand evict only each other, never an active answer. A refusal
//   is the safe side to hold an answer on: the cost is a token the provider learns of late (a
//   replica behind) refused for up to that long.
// - One question in flight per token: a burst of requests with one token (a dashboard's tiles)
//   waits for one answer, so the provider sees one introspection, not a flood.
// - The provider unreachable, slow or answering nonsense is 503 identity_provider_unavailable:
//   never a token let through, nor a caller told its valid token is bad.
// - The answer's claims meet the issuer's rules as a JWT's would (audiences, required claims,
//   times with the clock tolerance); a `token_type` other than Bearer (a refresh token) is refused.
//   A claim of the wrong kind (exp as a string) is nonsense from the provider: 503.
// - An `act` claim (the provider's own on-behalf-of token) is decided as a JWT's is (verify.ts).
import { hash } from 'node:crypto'
import type { JWTPayload } from 'jose'
import { createLru, createSharedResources, type SharedResources } from '../collections/index.ts'
import type { IntrospectionConfig, IssuerConfig } from '../config/index.ts'
import { GatewayError, truncateClientValue, type ErrorCode } from '../errors/index.ts'
import type { Identity } from '../request/index.ts'
import { UnprovenRefusal } from './authenticate.ts'
import { findDrift } from './drift.ts'
import { MAX_JSON_DEPTH, nestsTooDeep } from './jws.ts'
import { checkIntrospectedClaims, identityFromClaims, issuerUnknown, unauthorized } from './verify.ts'

/** An answer larger than this is not an introspection answer. */
const MAX_ANSWER_BYTES = 65_536

export interface Introspector {
  /** The issuer that introspects. */
  readonly issuer: IssuerConfig & { introspection: IntrospectionConfig }
  /**
   * `introspection.client_secret` with its `${secret:}` references resolved: set once the config is
   * compiled, and again whenever the secrets store has a new value.
   */
  clientSecret: string
  /**
   * For /readyz: how the endpoint last answered — `not asked yet`, `answering`, or `unavailable: …`
   * (unreachable, an HTTP error, no RFC 7662 answer). It names the issuer's state as a key set's
   * does: an issuer that only introspects has none, and a wrong client_secret showed nowhere.
   */
  readonly status: string
  introspect(token: string): Promise<Identity>
}

/** A refusal kept for `negative_cache`: what the 401 said, made again for each request it answers. */
interface Refusal {
  code: ErrorCode
  detail: string
}

export interface IntrospectorOptions {
  cacheEntries: number
  now?: () => number
}

export function createIntrospector(issuer: IssuerConfig & { introspection: IntrospectionConfig }, options: IntrospectorOptions): Introspector {
  const settings = issuer.introspection
  const now = options.now ?? Date.now
  const cache = createLru<Identity>(settings.cache > 0 ? options.cacheEntries : 0)
  const refused = createLru<Refusal>(settings.negative_cache > 0 ? options.cacheEntries : 0)
  const asking = new Map<string, Promise<Identity>>()
  let status = 'not asked yet'

  const introspector: Introspector = {
    issuer,
    clientSecret: settings.client_secret,
    get status() {
      return status
    },
    introspect(token) {
      // The caches' ages run on the monotonic clock: on the wall clock, one set back an hour kept an
      // answer (a token revoked at the provider since) an hour past introspection.cache.
      const at = performance.now()
      const cached = cache.get(token, at)
      if (cached) return Promise.resolve(cached)
      const refusal = settings.negative_cache > 0 ? refused.get(refusedKey(token), at) : undefined
      if (refusal) return Promise.reject(unauthorized(refusal.code, refusal.detail))
      const joined = asking.get(token)
      if (joined !== undefined) return joined.catch(countedOnce)
      const answer = ask(token, at).finally(() => asking.delete(token))
      asking.set(token, answer)
      return answer
    },
  }

  /**
   * A request that waited on another's question cost the provider nothing: its inactive answer is
   * not counted again (a dashboard's forty tiles on one revoked token are one failure, not forty).
   */
  function countedOnce(err: unknown): never {
    throw err instanceof UnprovenRefusal ? new GatewayError(err.code, { detail: err.detail, headers: err.headers }) : err
  }

  async function ask(token: string, askedMono: number): Promise<Identity> {
    const claims = await answerFor(token)
    status = 'answering'
    try {
      if (claims.active !== true) throw notActive()
      return identityOf(token, claims, askedMono)
    } catch (err) {
      // The provider's answer refused by the issuer's rules (audience, token type, required
      // claims, expiry) is as final as `active: false`: kept as long. Not a token that becomes
      // valid later (nbf), nor the provider's nonsense (503), which is asked again.
      if (err instanceof GatewayError && err.status === 401 && err.code !== 'token_not_yet_valid') keepRefusal(token, askedMono, err)
      throw err
    }
  }

  /** Counted from the question, as an active answer is; one that came later than that is not kept. */
  function keepRefusal(token: string, askedMono: number, err: GatewayError): void {
    const until = askedMono + settings.negative_cache
    if (settings.negative_cache > 0 && until > performance.now()) refused.set(refusedKey(token), { code: err.code, detail: err.detail }, until)
  }

  function identityOf(token: string, claims: JWTPayload & { token_type?: unknown }, askedMono: number): Identity {
    // Any iss present must be the issuer's, exactly: the probe found a non-string one (an array
    // naming another issuer) taken as if absent.
    if (claims.iss !== undefined && claims.iss !== issuer.issuer) {
      // SPEC: an iss that differs only by a trailing slash, the scheme or letter case says so (issuer
      // drift), as a JWT's does: the provider's answer said only "names iss …, not …" (a probe).
      const drift = typeof claims.iss === 'string' ? findDrift(claims.iss, [issuer.issuer]) : undefined
      if (drift) throw issuerUnknown(claims.iss as string, drift)
      const named = typeof claims.iss === 'string' ? claims.iss : JSON.stringify(claims.iss)
      throw unauthorized('issuer_unknown', `The introspection answer names iss ${truncateClientValue(named)}, not issuer "${issuer.name}"'s ${issuer.issuer}.`)
    }
    const type = claims.token_type
    if (type !== undefined && (typeof type !== 'string' || type.toLowerCase() !== 'bearer')) {
      throw unauthorized('malformed_token', `The token is a ${truncateClientValue(String(type), 64)} token, not a bearer access token.`)
    }
    const checkedAt = now()
    try {
      checkIntrospectedClaims(claims, issuer, checkedAt)
    } catch (err) {
      // A claim that is not of its kind (exp as a string, a sub that is not a string) is the
      // provider answering nonsense, not the caller's bad token: the probe found it a 401.
      if (err instanceof GatewayError && err.code === 'malformed_token') throw unavailable(`answered a malformed claim (${err.detail})`, err)
      throw err
    }
    // introspection.cache travels with the identity: a token exchanged for it lives no longer
    // than a revocation at the provider takes to be seen (token-endpoint.ts).
    const identity = Object.freeze({ ...identityFromClaims(issuer, claims), introspectionCache: settings.cache })
    // exp is the wall clock's: the time left to it, from now on the monotonic clock.
    const checkedMono = performance.now()
    const until = typeof claims.exp === 'number' ? Math.min(askedMono + settings.cache, checkedMono + claims.exp * 1000 - checkedAt) : askedMono + settings.cache
    if (until > checkedMono) cache.set(token, identity, until)
    return identity
  }

  /**
   * The provider's own answer counts as an unproven credential for auth_failures (each guess costs
   * it a round trip), for the request that asked (countedOnce); the refusal kept for negative_cache
   * does not: it costs the provider nothing, and a dashboard retrying its revoked token in a loop
   * counts once a period, not once a request.
   */
  function notActive(): GatewayError {
    const refusal = unauthorized('token_revoked', `Issuer "${issuer.name}" says the token is not active: it was revoked, it expired, or the issuer does not know it.`)
    return new UnprovenRefusal(refusal.code, { detail: refusal.detail, headers: refusal.headers })
  }

  /** 503: the provider cannot say, or says nonsense; never the caller's fault. */
  function unavailable(why: string, cause?: unknown): GatewayError {
    status = `unavailable: the endpoint ${why}`
    return new GatewayError('identity_provider_unavailable', {
      detail: `Issuer "${issuer.name}"'s introspection endpoint ${why}: the token cannot be checked right now.`,
      headers: { 'retry-after': '5' },
      cause,
    })
  }

  /** The provider's answer, or 503: unreachable, an HTTP error, or not an RFC 7662 answer. */
  async function answerFor(token: string): Promise<JWTPayload & { active?: unknown; token_type?: unknown }> {
    // One deadline for the whole answer, head and body: undici's headersTimeout and bodyTimeout
    // bound only each wait, so an answer trickled a byte at a time held the request (and every
    // request with the same token, which waits on this lookup) for hours.
    const deadline = AbortSignal.timeout(settings.timeout)
    let res
    try {
      // Loaded at the first introspection: the CLI commands that read this folder (`bouncer keys`,
      // `sessions`) never make one, and undici is 110 modules of their start.
      const { request } = await import('undici')
      res = await request(settings.url, {
        signal: deadline,
        method: 'POST',
        headers: {
          authorization: `Basic ${Buffer.from(`${formEncode(settings.client_id)}:${formEncode(introspector.clientSecret)}`).toString('base64')}`,
          'content-type': 'application/x-www-form-urlencoded',
          accept: 'application/json',
        },
        body: new URLSearchParams({ token, token_type_hint: 'access_token' }).toString(),
      })
    } catch (err) {
      throw unavailable(`cannot be reached (${(err as Error).message})`, err)
    }
    if (res.statusCode !== 200) {
      await res.body.dump()
      const hint = res.statusCode === 401 || res.statusCode === 403 ? ': check introspection.client_id and client_secret' : ''
      throw unavailable(`answered HTTP ${res.statusCode}${hint}`)
    }
    // Bytes, counted as bytes and decoded once: decoding each chunk on its own broke a character
    // split across two chunks (the probe's sub "josé" became "jos\uFFFD\uFFFD").
    const chunks: Buffer[] = []
    let bytes = 0
    try {
      for await (const chunk of res.body as AsyncIterable<Buffer>) {
        bytes += chunk.length
        if (bytes > MAX_ANSWER_BYTES) {
          res.body.destroy()
          throw unavailable(`answered more than ${MAX_ANSWER_BYTES} bytes`)
        }
        chunks.push(chunk)
      }
    } catch (err) {
      // Cut off, stalled past the deadline, or reset mid-answer: the provider's fault, not a 500.
      if (err instanceof GatewayError) throw err
      throw unavailable(`broke off its answer (${(err as Error).message})`, err)
    }
    const text = Buffer.concat(chunks, bytes).toString('utf8')
    // Claims nested deeper than a JWT's may be are no claims: taken, each place that writes claims
    // out again (an iss in a refusal, a token exchange, a function's event) overflowed the stack,
    // a 500 (found by a probe: 20,000 levels fit in 64 KB).
    if (nestsTooDeep(text)) throw unavailable(`answered JSON nested deeper than ${MAX_JSON_DEPTH} levels, deeper than a token's claims may be`)
    let parsed: unknown
    try {
      parsed = JSON.parse(text)
    } catch (err) {
      throw unavailable('answered something that is not JSON', err)
    }
    if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed) || typeof (parsed as { active?: unknown }).active !== 'boolean') {
      throw unavailable('answered without a boolean "active" (RFC 7662 §2.2)')
    }
    return parsed as JWTPayload & { active: boolean }
  }

  return introspector
}

/** What an introspector is made of: the issuer that introspects, and server.token_cache_entries. */
export interface IntrospectorSettings {
  issuer: IssuerConfig & { introspection: IntrospectionConfig }
  cacheEntries: number
}

export type IntrospectorRegistry = SharedResources<IntrospectorSettings, Introspector>

/**
 * Introspectors live as long as their issuer's settings, as key sets do: a reload that leaves them
 * alone keeps the cached answers. Made anew at each reload, every opaque token in use was asked
 * again at once (a burst on the provider), and a reload while the provider was down turned each
 * cached token into a 503 (found by a probe). Settings that change what an answer means (audiences,
 * required claims, the clock tolerance, …) start afresh. Nothing to close: the caches are memory.
 */
export function createIntrospectorRegistry(): IntrospectorRegistry {
  return createSharedResources<IntrospectorSettings, Introspector>({
    fingerprint: ({ issuer, cacheEntries }) => JSON.stringify([issuer, cacheEntries]),
    create: ({ issuer, cacheEntries }) => createIntrospector(issuer, { cacheEntries }),
    close: () => {},
  })
}

/** The refused-token cache's key: 43 characters whatever the token's length. */
function refusedKey(token: string): string {
  return hash('sha256', token, 'base64url')
}

/** RFC 6749 §2.3.1: the client id and secret are form-urlencoded before they are joined. */
function formEncode(value: string): string {
  return new URLSearchParams({ v: value }).toString().slice(2)
}
