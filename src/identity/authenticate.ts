// Every credential becomes one Identity (DESIGN "Second wave"). A route's `accept` lists the kinds
// it takes, in order; each kind has one verifier behind this face. The first kind whose credential
// the request carries decides: its verifier's answer (an identity, or its refusal) is final, so a
// request cannot fall through a bad credential to a weaker one. Access, limits, audit and assertions
// never ask which kind it was, except to record `credential`.
import type { Socket } from 'node:net'
import { GatewayError, type ErrorCode, type GatewayErrorOptions } from '../errors/index.ts'
import { isApiKeyBearer, type RequestHeaders } from '../http/index.ts'
import type { AcceptedCredential } from '../config/index.ts'
import type { CredentialKind, Identity } from '../request/index.ts'
import { hasAccessTokenParameter, type TokenVerifier } from './verify.ts'
import { presentedCertificate, type ForwardedClientCert } from './x509.ts'

/** The parts of a request a credential may be read from, and nothing else. */
export interface CredentialInput {
  readonly headers: RequestHeaders | null
  /** Node's flat [name, value, …] list, for headers the inspector does not keep (cookie, x-api-key). */
  readonly rawHeaders: readonly string[]
  readonly query: string
  /** The connection: a TLS socket (node:tls TLSSocket) carries the client certificate (client_cert). */
  readonly socket: Socket
  /** The request's method and target as sent (sessions: a browser's page load is sent to sign in, and comes back here). */
  readonly method?: string
  readonly target?: string
  /** TLS on this connection; and whether the peer is a trusted proxy (its X-Forwarded-Proto/-Host count). */
  readonly secure?: boolean
  readonly viaTrustedProxy?: boolean
  /** A forward-auth check (/.bouncer/auth): the answer goes to a proxy, not to a browser to follow. */
  readonly forwardAuth?: boolean
  /** A WebSocket handshake: a GET that opens a channel both ways, so as state-changing as a POST. */
  readonly upgrade?: boolean
}

export interface Authenticated {
  readonly identity: Identity
  readonly credential: CredentialKind
}

/**
 * A 401 that knows whom it refused: a genuine credential that no longer counts (an API key revoked
 * or expired, its secret matched). The audit record names that caller (subject, client_id), so
 * `bouncer audit --principal` finds a revoked key still in use. Never for a credential that was
 * not proven: an unknown key id or a wrong secret names whoever the sender chose.
 */
export class CredentialRefused extends GatewayError {
  readonly caller: Authenticated

  constructor(code: ErrorCode, options: GatewayErrorOptions, caller: Authenticated) {
    super(code, options)
    this.caller = caller
  }
}

/**
 * A refusal of a credential nobody proved to hold (auth_failures counts these per address): a token
 * that is garbled, from an unknown issuer, of a refused algorithm, signed by no key of its issuer or
 * not verifying, an API key unknown or with the wrong secret, an opaque token its provider calls
 * inactive (UnprovenRefusal). Not a genuine credential that no longer counts (expired, not yet valid,
 * for another audience, a revoked or expired API key): its holder guesses nothing, and a client that
 * refreshes on 401 must see the 401.
 */
export function unprovenCredential(err: unknown): boolean {
  return err instanceof GatewayError && !(err instanceof CredentialRefused) && (err instanceof UnprovenRefusal || UNPROVEN_CODES.has(err.code))
}

/**
 * A refusal whose code may name a genuine credential, said of one nobody proved to hold: an opaque
 * token its provider, just asked, calls inactive (token_revoked) is as likely made up as revoked —
 * RFC 7662 §2.2 answers both alike. Not counted, a caller spraying made-up opaque tokens was never
 * held back and cost the provider a round trip for each (a probe: 30 guesses, 30 introspections).
 */
export class UnprovenRefusal extends GatewayError {}

const UNPROVEN_CODES: ReadonlySet<ErrorCode> = new Set<ErrorCode>(['malformed_token', 'issuer_unknown', 'algorithm_not_allowed', 'key_not_found', 'signature_invalid', 'api_key_invalid'])

export interface CredentialVerifier {
  readonly kind: AcceptedCredential
  /** Does the request carry this kind of credential at all? Cheap: a header's presence. */
  presentIn(input: CredentialInput): boolean
  /**
   * The identity it proves, or a GatewayError (401, or 503 when what checks it is unavailable).
   * Also called for a request that carries none of what the route accepts, when this is the first
   * kind the route lists: it then answers the refusal for its missing credential (missing_token).
   */
  authenticate(input: CredentialInput): Promise<Authenticated>
  /**
   * For a request carrying nothing the route takes: should this kind answer the refusal, whatever
   * its place in `accept`? (A browser's page load is sent to sign in rather than told missing_token.)
   */
  answersMissing?(input: CredentialInput): boolean
  /**
   * For a credential that can be revoked (an API key, a session), read again for an open WebSocket
   * tunnel it authenticated (`identity`, what its handshake proved): why it no longer counts (a
   * sentence without its full stop), or null. No side effect: not a use, no refresh. Rejects when
   * what holds it cannot be read.
   */
  revoked?(input: CredentialInput, identity: Identity): Promise<string | null>
}

export interface Authenticator {
  authenticate(input: CredentialInput, accept: readonly AcceptedCredential[]): Promise<Authenticated>
  /** The `kind` verifier's `revoked`; null when that kind cannot be revoked. */
  revoked(input: CredentialInput, kind: CredentialKind, identity: Identity): Promise<string | null> | null
}

/** A header's value from Node's raw list (names compared case-insensitively); the first one wins. */
export function rawHeader(rawHeaders: readonly string[], lowerName: string): string | undefined {
  for (let i = 0; i < rawHeaders.length; i += 2) {
    const name = rawHeaders[i] as string
    if (name.length === lowerName.length && name.toLowerCase() === lowerName) return rawHeaders[i + 1]
  }
  return undefined
}

export function createAuthenticator(verifiers: ReadonlyMap<AcceptedCredential, CredentialVerifier>): Authenticator {
  /**
   * The verifier's answer; a session's refusal, and a missing client certificate's, also name the
   * challenge of the route's other kinds (the others' carry their own). A certificate presented
   * decides, so its refusal names none: a token sent beside it would not be taken.
   */
  function answer(verifier: CredentialVerifier, input: CredentialInput, accept: readonly AcceptedCredential[]): Promise<Authenticated> {
    const result = verifier.authenticate(input)
    const unchallenged = verifier.kind === 'session' || (verifier.kind === 'client_cert' && !verifier.presentIn(input))
    return unchallenged && challenges(accept) ? result.catch((err: unknown) => Promise.reject(withChallenge(err))) : result
  }
  return {
    authenticate(input, accept) {
      for (const kind of accept) {
        const verifier = verifiers.get(kind)
        if (verifier !== undefined && verifier.presentIn(input)) return answer(verifier, input, accept)
      }
      // Nothing the route takes: a kind that claims the case answers it (a browser is sent to sign
      // in); otherwise the first accepted kind says what was missing (missing_token for bearer).
      for (const kind of accept) {
        const verifier = verifiers.get(kind)
        if (verifier?.answersMissing?.(input)) return answer(verifier, input, accept)
      }
      const first = verifiers.get(accept[0] as AcceptedCredential)
      if (!first) return Promise.reject(notConfigured(accept))
      const carried = carriedElsewhere(verifiers, accept, input)
      return carried === null ? answer(first, input, accept) : answer(first, input, accept).catch((err: unknown) => Promise.reject(notAccepted(err, carried, accept)))
    },
    revoked(input, kind, identity) {
      const verifier = kind === 'exchanged' ? undefined : verifiers.get(kind)
      return verifier?.revoked?.(input, identity) ?? null
    },
  }
}

/** A kind of credential the request carries that the route does not take (an API key on a bearer-only route). */
function carriedElsewhere(verifiers: ReadonlyMap<AcceptedCredential, CredentialVerifier>, accept: readonly AcceptedCredential[], input: CredentialInput): AcceptedCredential | null {
  for (const [kind, verifier] of verifiers) if (!accept.includes(kind) && verifier.presentIn(input)) return kind
  return null
}

/**
 * Does the route take a credential that has an HTTP challenge? A bearer token and an API key
 * (`Authorization: Bearer bk_…`) do; a session cookie and a client certificate have none.
 */
function challenges(accept: readonly AcceptedCredential[]): boolean {
  return accept.includes('bearer') || accept.includes('api_key')
}

/**
 * RFC 9110 §11.6.1: a 401 names a scheme the client may answer with. A session's refusal
 * (session_required, session_expired) and a missing client certificate's (client_cert_required)
 * carried none, where the route also takes a bearer token or an API key. No `error`: the request
 * sent no token to be invalid (RFC 6750 §3.1).
 */
function withChallenge(err: unknown): unknown {
  if (!(err instanceof GatewayError) || err.status !== 401 || err.headers?.['www-authenticate'] !== undefined) return err
  const options = { detail: err.detail, headers: { ...err.headers, 'www-authenticate': 'Bearer' }, cause: err.cause }
  // Still counted by auth_failures: a made-up session cookie on a route that also takes tokens.
  return err instanceof UnprovenRefusal ? new UnprovenRefusal(err.code, options) : new GatewayError(err.code, options)
}

const CREDENTIAL_NAMES: Record<AcceptedCredential, string> = {
  bearer: 'a bearer token',
  session: 'a session cookie',
  api_key: 'an API key',
  client_cert: 'a client certificate',
}

/** The missing-credential refusal, saying what the request sent instead: a clear 401, not a puzzle. */
function notAccepted(err: unknown, carried: AcceptedCredential, accept: readonly AcceptedCredential[]): unknown {
  if (!(err instanceof GatewayError) || err.status !== 401) return err
  const detail = `${err.detail} The request carries ${CREDENTIAL_NAMES[carried]}, which this route does not accept (accept: ${accept.join(', ')}).`
  return new GatewayError(err.code, { detail, headers: err.headers })
}

function notConfigured(accept: readonly AcceptedCredential[]): GatewayError {
  // `bouncer check` refuses a route accepting a kind nothing is configured for; this is a backstop.
  return new GatewayError('internal_error', { detail: `No verifier is configured for ${accept.join(', ')}.` })
}

/**
 * Bearer tokens from the configured issuers (verify.ts: JWTs, and opaque tokens by introspection):
 * the default credential. `Authorization: Bearer bk_…` is an API key, not a bearer token: it is
 * the api_key verifier's, and absent to this one. `forwarded`: server.forwarded_client_cert, where a
 * certificate-bound token's certificate comes from behind a TLS-terminating proxy.
 */
export function bearerVerifier(tokens: TokenVerifier, forwarded: ForwardedClientCert | null = null): CredentialVerifier {
  const certificateOf = presentedCertificate(forwarded)
  return {
    kind: 'bearer',
    // A token in the query string counts as present, so that it is refused (400), not ignored.
    // The same test as the refusal's (verify.ts): `?no_access_token=1` is no token, and hides no other credential.
    presentIn: (input) => (input.headers?.authorization !== undefined && !isApiKeyBearer(input.headers.authorization)) || (input.query !== '' && hasAccessTokenParameter(input.query)),
    async authenticate(input) {
      const authorization = input.headers?.authorization
      const identity = await tokens.verify(isApiKeyBearer(authorization) ? undefined : authorization, input.query, certificateOf, input)
      // A token the gateway issued by token exchange is a bearer token too; the audit record tells them apart.
      return { identity, credential: identity.grantedRoles === undefined ? 'bearer' : 'exchanged' }
    },
  }
}
