// The gateway's own tokens (token exchange, RFC 8693): verified like any issuer's, with the keys the
// gateway signs them with, and read into an Identity that says what the exchange decided — the
// user as `sub`, the roles it granted, and the agent acting for the user (`act`, RFC 8693 §4.1).
import type { KeyObject } from 'node:crypto'
import { errors as jose, type JWTPayload, type JWTVerifyGetKey } from 'jose'
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
    if (!key) throw new jose.JWKSNoMatchingKey()
    return key as never
  }
  return {
    name: own.config.name,
    issuer: own.config.issuer,
    getKey,
    state: 'ready',
    hasKeys: true,
    attempted: true,
    lastError: null,
    close() {},
  }
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
  if (typeof claims.sub !== 'string' || (claims.iss !== undefined && typeof claims.iss !== 'string')) return null
  const iss = (claims.iss as string | undefined) ?? tokenIss
  return Object.freeze({
    issuerName: issuerNameOf(iss) ?? EXCHANGE_ISSUER,
    iss,
    sub: claims.sub,
    clientId: typeof claims.client_id === 'string' ? claims.client_id : null,
    roles: roles === 'from-claim' ? Object.freeze(strings(claims.roles)) : null,
    claims: Object.freeze(claims),
  })
}

/**
 * An exchanged token's Identity: the user stays the principal, under the name of the issuer their
 * own token came from (`idp`), so limits keyed by principal count their direct and delegated calls
 * as one; the roles are the ones the exchange granted; `act` becomes the actor. Null when `act`
 * is present but names nobody (the gateway never signs one like that).
 */
export function exchangedIdentity(identity: Identity, claims: JWTPayload, issuerNameOf: (iss: string) => string | undefined): Identity | null {
  const idp = typeof claims.idp === 'string' ? claims.idp : undefined
  const actor = actorOf(claims.act, identity.iss, issuerNameOf, 'from-claim')
  if (actor === null) return null
  return Object.freeze({
    ...identity,
    issuerName: (idp !== undefined ? issuerNameOf(idp) : undefined) ?? EXCHANGE_ISSUER,
    grantedRoles: Object.freeze(strings(claims.roles)),
    actor: actor ?? null,
  })
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
