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
 * An exchanged token's Identity: the user stays the principal, under the name of the issuer their
 * own token came from (`idp`), so limits keyed by principal count their direct and delegated calls
 * as one; the roles are the ones the exchange granted; `act` becomes the actor. Null when `act`
 * is present but names nobody (the gateway never signs one like that).
 */
export function exchangedIdentity(identity: Identity, claims: JWTPayload, issuerNameOf: (iss: string) => string | undefined): Identity | null {
  const idp = typeof claims.idp === 'string' ? claims.idp : undefined
  let actor: Actor | null = null
  if (claims.act !== undefined) {
    const act = claims.act as Record<string, unknown> | null
    if (act === null || typeof act !== 'object' || typeof act.sub !== 'string' || typeof act.iss !== 'string') return null
    actor = Object.freeze({
      issuerName: issuerNameOf(act.iss) ?? EXCHANGE_ISSUER,
      iss: act.iss,
      sub: act.sub,
      clientId: typeof act.client_id === 'string' ? act.client_id : null,
      roles: Object.freeze(strings(act.roles)),
      claims: Object.freeze(act),
    })
  }
  return Object.freeze({
    ...identity,
    issuerName: (idp !== undefined ? issuerNameOf(idp) : undefined) ?? EXCHANGE_ISSUER,
    grantedRoles: Object.freeze(strings(claims.roles)),
    actor,
  })
}
