// The verified caller, as every stage after authentication sees it: access, limits, the audit record
// and identity assertions read it and never ask how it was proven.

/** How the caller proved who it is (the audit record's `credential`). */
export type CredentialKind = 'bearer' | 'session' | 'api_key' | 'client_cert' | 'exchanged'

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
