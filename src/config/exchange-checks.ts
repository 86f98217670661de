// Checks of token_exchange (SPEC "Agents: MCP and token exchange"): names that must exist, and an
// issuer the metadata document (RFC 8414) can be found for.
import type { Finding } from './diagnostics.ts'
import type { Config } from './schema.ts'

/** The configured-issuer name of the gateway's own tokens: reserved, as `api-keys` is. */
export const EXCHANGE_ISSUER = 'token-exchange'

/** `${secret:NAME}`, whole: the one form token_exchange.signing.key takes. */
const SECRET_REFERENCE = /^\$\{secret:([^}]+)\}$/

/** The secret a token_exchange.signing.key names, or null when it is not one whole reference. */
export function signingSecretName(key: string): string | null {
  return SECRET_REFERENCE.exec(key)?.[1] ?? null
}

export function exchangeFindings(config: Config): Finding[] {
  const findings: Finding[] = []
  const error = (path: Finding['path'], message: string) => findings.push({ severity: 'error', path, message })
  config.issuers.forEach((issuer, i) => {
    if (issuer.name === EXCHANGE_ISSUER) error(['issuers', i, 'name'], `the issuer name "${EXCHANGE_ISSUER}" is reserved for the tokens the gateway issues by token exchange`)
  })
  const exchange = config.token_exchange
  if (!exchange) return findings

  // RFC 8414 §3: the metadata of an issuer with a path lives under that path; an origin keeps
  // /.well-known/oauth-authorization-server and /oauth2/token where clients look for them.
  const url = new URL(exchange.issuer)
  if (url.pathname !== '/' || url.search !== '' || url.hash !== '' || url.username !== '' || url.password !== '') {
    error(['token_exchange', 'issuer'], `the issuer is the gateway's origin as clients reach it (${url.origin}): no path, query or credentials (RFC 8414 §2)`)
  }
  const own = exchange.issuer.replace(/\/$/, '')
  config.issuers.forEach((issuer, i) => {
    if (issuer.type === 'jwt' && issuer.issuer.replace(/\/$/, '') === own) {
      error(['token_exchange', 'issuer'], `issuers[${i}] ("${issuer.name}") has this issuer already: the gateway's own tokens need an iss of their own`)
    }
  })
  if (exchange.signing.key !== undefined && signingSecretName(exchange.signing.key) === null) {
    error(['token_exchange', 'signing', 'key'], 'the signing key is a whole ${secret:NAME} reference (an EC P-256 private key in the secrets store), or left out for a key the gateway makes')
  }

  const roles = new Set(config.roles.map((role) => role.name))
  exchange.actors.forEach((actor, i) => {
    if (!roles.has(actor.role)) error(['token_exchange', 'actors', i, 'role'], `unknown role "${actor.role}"`)
    actor.delegated_roles.forEach((name, j) => {
      if (name !== '*' && !roles.has(name)) error(['token_exchange', 'actors', i, 'delegated_roles', j], `unknown role "${name}"`)
    })
  })
  if (exchange.enabled && exchange.actors.length === 0 && exchange.require_actor) {
    findings.push({ severity: 'warning', path: ['token_exchange', 'actors'], message: 'no actors are listed: every exchange is refused (unauthorized_client) until an agent\'s role is' })
  }
  return findings
}
