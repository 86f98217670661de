// The verified caller, as every stage after authentication sees it: access, limits, the audit record
// and identity assertions read it and never ask how it was proven.

import { isApiKeyBearer, type RequestHeaders } from '../http/index.ts'

/** How the caller proved who it is (the audit record's `credential`). */
export type CredentialKind = 'bearer' | 'session' | 'api_key' | 'client_cert' | 'exchanged'

/**
 * The issuer that vouched for `sub`: the user's own identity provider. A token the gateway issued
 * by token exchange has the gateway as `iss` and the provider in its `idp` claim; two users of two
 * providers with one `sub` are two people, and one user through two agents is two callers (actorOf).
 */
export function subjectIssuer(identity: Identity): string {
  return identity.idp ?? identity.iss
}

/** The agent acting for the subject, as one string (`iss sub`), or null: part of what binds a session or an approval to its caller. */
export function actorOf(identity: Identity): string | null {
  return identity.actor ? `${identity.actor.iss} ${identity.actor.sub}` : null
}

/**
 * The Authorization a `forward_authorization` route hands on (to an upstream, or in a function's
 * event): the bearer token this request was authenticated by, or on a public route (nothing
 * authenticated) the client's own, for the upstream to check. Never an API key (`Bearer bk_…` is
 * the gateway's credential), and never a header that sat unchecked beside the credential that did
 * authenticate (an API key, a session, a certificate): the upstream would take it as verified.
 */
export function forwardableAuthorization(credential: CredentialKind | null, inbound: Pick<RequestHeaders, 'authorization' | 'authorizationHopByHop'>): string | undefined {
  const authorization = inbound.authorization
  // Also never one the client marked hop-by-hop (Connection: Authorization): meant for the gateway alone.
  if (authorization === undefined || inbound.authorizationHopByHop || isApiKeyBearer(authorization)) return undefined
  return credential === null || credential === 'bearer' || credential === 'exchanged' ? authorization : undefined
}

export interface Identity {
  /** The configured issuer's name. */
  issuerName: string
  /** The token's `iss`. */
  iss: string
  sub: string
  /** `client_id`, else `azp`, else `appid` (Entra ID v1), else `cid` (Okta), else null. */
  clientId: string | null
  claims: Readonly<Record<string, unknown>>
  /** Seconds since the epoch. */
  expiresAt: number
  /**
   * A token the gateway issued itself (token exchange, RFC 8693): the roles it granted, which are
   * the roles this identity holds while the running config still grants them (access/roles.ts).
   * Absent for every other credential.
   */
  grantedRoles?: readonly string[]
  /**
   * A token the gateway issued: its `idp` claim, the `iss` of the user's own token. (Its `claims`
   * are that token's claims, not the gateway's: own-tokens.ts.)
   */
  idp?: string
  /**
   * A token the gateway issued: its `aud`, the one target the exchange issued it for (its `claims`
   * hold the user's own token's). A reload decides the streams and tunnels it opened by it.
   */
  audience?: string
  /** On behalf of: the agent acting for `sub` (the token's `act` claim, RFC 8693 §4.1). */
  actor?: Actor | null
  /**
   * An opaque token checked by introspection: its issuer's `introspection.cache` (ms), how late a
   * revocation at the provider may be seen. Absent for a token verified locally.
   */
  introspectionCache?: number
}

/** The agent named by an exchanged token's `act` claim, as access, limits, audit and assertions see it. */
export interface Actor {
  /** The configured issuer's name of the agent's own token (the `act.iss` it maps to). */
  issuerName: string
  iss: string
  sub: string
  clientId: string | null
  /**
   * The roles the agent held when the gateway exchanged the token (its side of every decision);
   * null for another issuer's token naming an actor, whose roles its trust rules give it.
   */
  roles: readonly string[] | null
  /** The `act` claim itself: what statement conditions on claims see for the agent. */
  claims: Readonly<Record<string, unknown>>
}

/** A claim by name; a dotted name reaches into objects (`realm_access.roles`) when no claim has it whole. */
export function claimValue(claims: Readonly<Record<string, unknown>>, name: string): unknown {
  if (Object.hasOwn(claims, name) || !name.includes('.')) return claims[name]
  let value: unknown = claims
  for (const part of name.split('.')) {
    if (value === null || typeof value !== 'object') return undefined
    value = (value as Record<string, unknown>)[part]
  }
  return value
}
