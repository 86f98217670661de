// Every credential becomes one Identity (DESIGN "Second wave"). A route's `accept` lists the kinds
// it takes, in order; each kind has one verifier behind this face. The first kind whose credential
// the request carries decides: its verifier's answer (an identity, or its refusal) is final, so a
// request cannot fall through a bad credential to a weaker one. Access, limits, audit and assertions
// never ask which kind it was, except to record `credential`.
import type { Socket } from 'node:net'
import { GatewayError } from '../errors/index.ts'
import type { RequestHeaders } from '../http/index.ts'
import type { AcceptedCredential } from '../config/index.ts'
import type { CredentialKind, Identity } from '../request/index.ts'

/** The parts of a request a credential may be read from, and nothing else. */
export interface CredentialInput {
  readonly headers: RequestHeaders | null
  /** Node's flat [name, value, …] list, for headers the inspector does not keep (cookie, x-api-key). */
  readonly rawHeaders: readonly string[]
  readonly query: string
  /** The connection: a TLS socket (node:tls TLSSocket) carries the client certificate (client_cert). */
  readonly socket: Socket
}

export interface Authenticated {
  readonly identity: Identity
  readonly credential: CredentialKind
}

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
}

export interface Authenticator {
  authenticate(input: CredentialInput, accept: readonly AcceptedCredential[]): Promise<Authenticated>
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
  return {
    authenticate(input, accept) {
      for (const kind of accept) {
        const verifier = verifiers.get(kind)
        if (verifier !== undefined && verifier.presentIn(input)) return verifier.authenticate(input)
      }
      // Nothing the route takes: the first accepted kind says what was missing (missing_token for bearer).
      const first = verifiers.get(accept[0] as AcceptedCredential)
      return first ? first.authenticate(input) : Promise.reject(notConfigured(accept))
    },
  }
}

function notConfigured(accept: readonly AcceptedCredential[]): GatewayError {
  // `bouncer check` refuses a route accepting a kind nothing is configured for; this is a backstop.
  return new GatewayError('internal_error', { detail: `No verifier is configured for ${accept.join(', ')}.` })
}

/** Bearer JWTs from the configured issuers (verify.ts): the default credential. */
export function bearerVerifier(tokens: { verify(authorization: string | undefined, query: string): Promise<Identity> }): CredentialVerifier {
  return {
    kind: 'bearer',
    // A token in the query string counts as present, so that it is refused (400), not ignored.
    presentIn: (input) => input.headers?.authorization !== undefined || input.query.includes('access_token='),
    async authenticate(input) {
      return { identity: await tokens.verify(input.headers?.authorization, input.query), credential: 'bearer' }
    },
  }
}
