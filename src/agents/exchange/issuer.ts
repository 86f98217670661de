// The gateway as an OAuth authorization server for one grant, token exchange: its issuer
// identifier, the audiences its tokens may be for, and the issuer rules its own tokens are
// verified with when they come back as bearer tokens.
import { EXCHANGE_ISSUER, jwtIssuers, type Config, type IssuerConfig, type TokenExchangeConfig } from '../../config/index.ts'
import { untrustedProviderRefusal } from '../../identity/index.ts'
import type { Identity } from '../../request/index.ts'

export const TOKEN_PATH = '/oauth2/token'
export const EXCHANGE_JWKS_PATH = '/oauth2/jwks'
export const METADATA_PATH = '/.well-known/oauth-authorization-server'
/**
 * The clock tolerance of the gateway's own tokens: its own clock, or its fellow instances' (NTP),
 * not an identity provider's. 30 s let a token capped at a short introspection.cache outlive a
 * revocation by half a minute (found by an adversarial probe).
 */
export const OWN_TOKEN_CLOCK_TOLERANCE_MS = 5_000

/** The issuer identifier as tokens and the metadata state it (RFC 8414 §2: no trailing slash needed). */
export function issuerOf(exchange: TokenExchangeConfig): string {
  return exchange.issuer.replace(/\/+$/, '')
}

/** What an exchanged token may be for: the configured audiences, or the issuer itself. */
export function audiencesOf(exchange: TokenExchangeConfig): readonly string[] {
  return exchange.audiences ?? [issuerOf(exchange)]
}

/**
 * The rules the gateway's own tokens are verified with on its HTTP routes: its key (ES256), typ
 * at+jwt, its audiences but the MCP endpoint's `mcp.resource`. A token exchanged for that resource
 * (RFC 8707) is for it alone, as an identity provider's token for it is (the probe found it taken
 * on the routes); the MCP endpoint verifies with its resource as the audience (resource-server.ts).
 * A resource that is the issuer itself names the whole gateway, routes included.
 */
export function ownIssuerConfig(exchange: TokenExchangeConfig, mcpResource?: string): IssuerConfig {
  const issuer = issuerOf(exchange)
  const mcpOnly = mcpResource !== issuer ? mcpResource : undefined
  return {
    name: EXCHANGE_ISSUER,
    type: 'jwt',
    issuer,
    audiences: audiencesOf(exchange).filter((audience) => audience !== mcpOnly),
    algorithms: ['ES256'],
    clock_tolerance: OWN_TOKEN_CLOCK_TOLERANCE_MS,
    required_claims: [],
    // Bounds how long a verified token stays cached: a key withdrawn stops being honoured within it.
    jwks_refresh_interval: 60_000,
    jwks_cooldown: 30_000,
    client_id_audience: false,
    token_types: ['at+jwt'],
  }
}

/**
 * Why the routes of `config` would refuse a token the gateway exchanged under an earlier one (its
 * issuer, its audience; a sentence's end), or null: what a reload decides the tunnels and streams
 * it opened by. No I/O: its signature was verified, and its expiry is their own timer. The probe
 * found them open after a reload that a new handshake with the token was refused for, as such a
 * token's roles are those it carries, granted at the exchange: no trust rule was left to change.
 */
export function ownTokenRefusal(config: Config, identity: Identity): string | null {
  const exchange = config.token_exchange
  if (!exchange?.enabled || issuerOf(exchange) !== identity.iss) return 'the gateway no longer accepts its own exchanged tokens (token_exchange)'
  const { audiences } = ownIssuerConfig(exchange, config.mcp?.resource)
  if (identity.audience === undefined || !audiences.includes(identity.audience)) {
    return `the gateway no longer accepts its exchanged tokens for ${identity.audience ?? 'no audience'} (token_exchange.audiences)`
  }
  return ownTokenProviderRefusal(config, identity)
}

/** Why `config` would refuse an exchanged token for the provider of its user or agent (a sentence's end), or null: untrustedProviderRefusal. */
export function ownTokenProviderRefusal(config: Config, identity: Identity): string | null {
  const refusal = untrustedProviderRefusal(identity, (iss) => jwtIssuers(config).some((issuer) => issuer.issuer === iss))
  return refusal === null ? null : refusal.replace(/^The token/, 'the token').replace(/\.$/, '')
}
