// The gateway's own tokens (token exchange, RFC 8693): verified like any issuer's, with the keys the
// gateway signs them with, and read into an Identity that says what the exchange decided — the
// user as `sub`, the roles it granted, and the agent acting for the user (`act`, RFC 8693 §4.1).
import type { KeyObject } from 'node:crypto'
import type { JWTPayload, JWTVerifyGetKey } from 'jose'
import { jose } from './jose.ts'
import { EXCHANGE_ISSUER, type IssuerConfig } from '../config/index.ts'
import type { Actor, Identity } from '../request/index.ts'
import type { IssuerKeys } from './issuers.ts'

/** What the verifier needs to know of the gateway's own tokens: the issuer's rules and its keys. */
export interface OwnTokens {
  readonly config: IssuerConfig
  /** The published key with this kid (the current one when the token names none), or undefined. */
  publicKey(kid: string | undefined): KeyObject | undefined
}

/** The key set of the built-in issuer: always loaded (the gateway holds the keys itself). */
export function ownIssuerKeys(own: OwnTokens): IssuerKeys {
  const getKey: JWTVerifyGetKey = async (header) => {
    const key = own.publicKey(header.kid)
    if (!key) throw new (jose().errors.JWKSNoMatchingKey)()
    return key as never
  }
  return {
    name: own.config.name,
    issuer: own.config.issuer,
    getKey,
    keySetOnceTried: async () => getKey,
    state: 'ready',
    hasKeys: true,
    attempted: true,
    lastError: null,
    close() {},
  }
}

/**
 * The claim of the gateway's token that holds the user's own claims of the names below, as the
 * user's identity provider wrote them.
 */
export const IDP_CLAIMS = 'idp_claims'

/**
 * The claims the gateway's token states itself (the user, the audience, the lifetime, the roles
 * granted, the agent…). Every other claim of the user's token is carried as it was, beside them;
 * a user's claim of one of these names travels in `idp_claims`, so the exchanged token holds the
 * user's claims once each, and grows by nothing else than the gateway's own.
 */
const STATED_CLAIMS: ReadonlySet<string> = new Set([
  'iss', 'sub', 'aud', 'exp', 'nbf', 'iat', 'jti', 'act', 'may_act', 'scope', 'scp', 'roles', 'client_id', 'azp', 'idp', 'cnf', 'nonce', 'auth_time', 'sid', 'at_hash', 'c_hash', IDP_CLAIMS,
])

/**
 * The user's token's claims as the gateway's token carries them: `carried` at its top level,
 * `restated` (the names it states itself) under `idp_claims`.
 */
export function splitUserClaims(userClaims: Readonly<Record<string, unknown>>): { carried: Record<string, unknown>; restated: Record<string, unknown> } {
  const entries = Object.entries(userClaims)
  // fromEntries defines each name, so a claim named __proto__ stays a claim.
  return {
    carried: Object.fromEntries(entries.filter(([name]) => !STATED_CLAIMS.has(name))),
    restated: Object.fromEntries(entries.filter(([name]) => STATED_CLAIMS.has(name))),
  }
}

/** Does a token the gateway issued hold the user's claims it restates (`idp_claims`, an object)? */
export function carriesUserClaims(claims: Readonly<Record<string, unknown>>): boolean {
  const restated = claims[IDP_CLAIMS]
  return restated !== null && typeof restated === 'object' && !Array.isArray(restated)
}

/**
 * The user's own token's claims, put back together from a token the gateway issued: what statement
 * conditions, claim-keyed limits and datasets read, as they would read the user's own token. The
 * probe found a deny on the provider's `roles` or `scp` not applying to an agent acting for the
 * user: conditions read the gateway's `roles` (role names it granted) instead. Claims written by
 * hand without `idp_claims` (explain) give the carried claims alone.
 */
function userClaimsOf(claims: Readonly<Record<string, unknown>>): Readonly<Record<string, unknown>> {
  const restated = carriesUserClaims(claims) ? Object.entries(claims[IDP_CLAIMS] as Record<string, unknown>) : []
  return Object.freeze(Object.fromEntries([...Object.entries(claims).filter(([name]) => !STATED_CLAIMS.has(name)), ...restated]))
}

function strings(value: unknown): string[] {
  return Array.isArray(value) ? value.filter((v): v is string => typeof v === 'string') : []
}

/**
 * The agent an `act` claim names (RFC 8693 §4.1): undefined when there is no `act`, null when it
 * names nobody (no `sub`). `iss` defaults to the token's own issuer. `roles`: the roles the gateway
 * recorded for the agent in a token it issued; null for another issuer's token, whose actor holds
 * the roles its trust rules give it.
 */
export function actorOf(act: unknown, tokenIss: string, issuerNameOf: (iss: string) => string | undefined, roles: 'from-claim' | 'from-trust-rules'): Actor | null | undefined {
  if (act === undefined) return undefined
  if (act === null || typeof act !== 'object' || Array.isArray(act)) return null
  const claims = act as Record<string, unknown>
  // An empty (or blank) sub names nobody, as a token's own sub does (verify.ts namesSomeone): every
  // token acting as "" was one agent, its roles from rules matching any subject, its limits shared.
  if (typeof claims.sub !== 'string' || claims.sub.trim() === '' || (claims.iss !== undefined && typeof claims.iss !== 'string')) return null
  const iss = (claims.iss as string | undefined) ?? tokenIss
  return Object.freeze({
    issuerName: issuerNameOf(iss) ?? EXCHANGE_ISSUER,
    iss,
    sub: claims.sub,
    clientId: typeof claims.client_id === 'string' ? claims.client_id : null,
    roles: roles === 'from-claim' ? Object.freeze(strings(claims.roles)) : null,
    // In a token the gateway issued, act.roles are its role names, held as `roles` above: not a
    // claim a statement condition on the agent's `roles` may match by spelling. Its act carries the
    // agent's own token's claims as it carries the user's (idp_claims); an earlier version's did not.
    claims: roles === 'from-trust-rules' ? Object.freeze(claims) : carriesUserClaims(claims) ? userClaimsOf(claims) : Object.freeze(withoutRoles(claims)),
  })
}

function withoutRoles(claims: Record<string, unknown>): Record<string, unknown> {
  return Object.fromEntries(Object.entries(claims).filter(([name]) => name !== 'roles'))
}

/**
 * An exchanged token's Identity: the user stays the principal, under the name of the issuer their
 * own token came from (`idp`), so limits keyed by principal count their direct and delegated calls
 * as one; the roles are the ones the exchange granted; `act` becomes the actor; the claims are the
 * user's own token's (userClaimsOf). Null when `act` is present but names nobody (the gateway
 * never signs one like that).
 */
export function exchangedIdentity(identity: Identity, claims: JWTPayload, issuerNameOf: (iss: string) => string | undefined): Identity | null {
  const idp = typeof claims.idp === 'string' ? claims.idp : undefined
  const actor = actorOf(claims.act, identity.iss, issuerNameOf, 'from-claim')
  if (actor === null) return null
  return Object.freeze({
    ...identity,
    issuerName: (idp !== undefined ? issuerNameOf(idp) : undefined) ?? EXCHANGE_ISSUER,
    claims: userClaimsOf(claims),
    ...(idp !== undefined ? { idp } : {}),
    ...(typeof claims.aud === 'string' ? { audience: claims.aud } : {}),
    grantedRoles: Object.freeze(strings(claims.roles)),
    actor: actor ?? null,
  })
}

/**
 * Why a token the gateway exchanged is no longer taken because the provider of the user's token
 * (`idp`) or of the agent's (`act.iss`) is not among the issuers `trusted` (those of the running
 * config), or null. The probe found such a token served, and its tunnel kept, after a reload that
 * removed that provider: the user's own token was refused at once, yet the exchanged token's roles
 * are the ones it carries, so no trust rule was left to refuse it.
 */
export function untrustedProviderRefusal(identity: Identity, trusted: (iss: string) => boolean): string | null {
  const gone = [identity.idp, identity.actor?.iss].find((iss) => iss !== undefined && !trusted(iss))
  return gone === undefined ? null : `The token was exchanged for a token of ${gone}, which no configured issuer has any longer.`
}

/**
 * Another issuer's token acting for a user (an `act` claim, as an identity provider's own token
 * exchange or on-behalf-of flow writes it): the same Identity with its actor, decided for both.
 * Null when `act` names nobody: refused, never read as the user alone.
 */
export function delegatedIdentity(identity: Identity, claims: JWTPayload, issuerNameOf: (iss: string) => string | undefined): Identity | null {
  const actor = actorOf(claims.act, identity.iss, issuerNameOf, 'from-trust-rules')
  if (actor === undefined) return identity
  if (actor === null) return null
  return Object.freeze({ ...identity, actor })
}
