// The MCP endpoint as an OAuth resource server (MCP "Authorization", 2025-06-18 and later):
// - RFC 9728 protected-resource metadata at /.well-known/oauth-protected-resource<mcp.path>;
// - 401 with `WWW-Authenticate: Bearer resource_metadata="…"` so clients find the authorization server;
// - tokens must carry mcp.resource as audience (RFC 8707): a token minted for another API, even by
//   a trusted issuer, is refused here (the confused-deputy attack the spec warns about);
// - 403 with error="insufficient_scope" when a required scope is missing;
// - an Origin that is neither the resource's nor listed is refused (DNS rebinding).
import type { AccessControl } from '../../access/index.ts'
import { jwtIssuers, type Config, type McpConfig } from '../../config/index.ts'
import { GatewayError, truncateClientValue } from '../../errors/index.ts'
import { checkClaims, createTokenVerifier, presentedCertificate, type ForwardedClientCert, type IssuerKeys, type OwnTokens, type TokenVerifier } from '../../identity/index.ts'
import type { AuthFailureGuard } from '../../limits/index.ts'
import type { Caller, RequestContext } from '../../request/index.ts'
import type { Logger } from '../../telemetry/index.ts'
import { audiencesOf, issuerOf, ownTokenProviderRefusal } from '../exchange/issuer.ts'

export const METADATA_PREFIX = '/.well-known/oauth-protected-resource'

export interface ResourceServer {
  readonly metadataPath: string
  readonly metadataUrl: string
  metadata(): Record<string, unknown>
  /** The caller of an MCP request (401/403 GatewayErrors with the challenges MCP clients read). */
  authenticate(ctx: Readonly<RequestContext>): Promise<Caller>
  /**
   * Why this endpoint would refuse a caller another runtime's endpoint authenticated (its
   * notification stream, after a reload), or null: the token's issuer gone or now another, its
   * audience no longer mcp.resource, its claims no longer what the issuer requires, a scope now
   * lacking. No I/O (its signature was verified); its expiry is the stream's own timer.
   */
  refusalOf(caller: Caller): string | null
  checkOrigin(origin: string | undefined): void
}

export function createResourceServer(config: Config, mcp: McpConfig, deps: { issuerKeys: ReadonlyMap<string, IssuerKeys>; keyRemovalCount: () => number; own?: OwnTokens | null; access: AccessControl; logger: Logger; authFailures?: AuthFailureGuard | null }): ResourceServer {
  const resource = new URL(mcp.resource)
  // The gateway's own tokens are taken here only while the exchange issues them for this resource:
  // the probe found those issued before a reload that dropped mcp.resource from
  // token_exchange.audiences still served (their streams kept), up to their lifetime.
  const forwarded = config.server.forwarded_client_cert
  // A certificate-bound token's certificate behind a TLS-terminating proxy, as on routes (x509.ts).
  const fields: ForwardedClientCert | null = forwarded === undefined ? null : { header: forwarded.header, chainHeader: forwarded.chain_header }
  const certificateOf = presentedCertificate(fields)
  const ownTokens = deps.own && exchangeIssuesFor(config, mcp.resource) ? { ...deps.own, config: { ...deps.own.config, audiences: [mcp.resource] } } : null
  const metadataPath = `${METADATA_PREFIX}${mcp.path === '/' ? '' : mcp.path}`
  const metadataUrl = `${resource.origin}${metadataPath}`
  // The same issuers and keys as every route, with one audience: this resource.
  const tokens: TokenVerifier = createTokenVerifier({
    issuers: jwtIssuers(config).map((issuer) => ({ ...issuer, audiences: [mcp.resource], client_id_audience: false })),
    keys: deps.issuerKeys,
    keyRemovalCount: deps.keyRemovalCount,
    maxTokenBytes: config.server.max_token_bytes,
    cacheEntries: config.server.token_cache_entries,
    logger: deps.logger,
    // On behalf of a user: the gateway's own exchanged tokens, when exchanged for this resource.
    own: ownTokens,
  })
  const scope = mcp.scopes.join(' ')
  const challenge = (extra: string) => `Bearer resource_metadata="${metadataUrl}"${scope === '' ? '' : `, scope="${scope}"`}${extra}`
  const authorizationServers = mcp.authorization_servers ?? [...jwtIssuers(config).map((issuer) => issuer.issuer), ...exchangeIssuerFor(config, mcp)]
  const allowedOrigins = new Set<string>([resource.origin, ...mcp.allowed_origins])
  const accepting = jwtIssuers(config).map((issuer) => ({ ...issuer, audiences: [mcp.resource], client_id_audience: false }))

  /** Why the verifier would refuse the caller's token now (its signature aside), or null. */
  function tokenRefusal({ identity, credential }: Caller): string | null {
    if (credential === 'exchanged') {
      // Their claims are the user's: the token's own audience is `audience` (the probe found a
      // stream kept by a reload that moved mcp.resource, which a request with its token was refused for).
      if (!deps.own || deps.own.config.issuer !== identity.iss) return 'the gateway no longer accepts its own exchanged tokens here (token_exchange)'
      if (identity.audience !== mcp.resource) return `the token is for ${identity.audience ?? 'no audience'}, not ${mcp.resource} (mcp.resource)`
      if (ownTokens === null) return `token_exchange.audiences no longer lists ${mcp.resource}: the gateway no longer accepts its exchanged tokens here`
      return ownTokenProviderRefusal(config, identity)
    }
    const issuer = accepting.find((candidate) => candidate.name === identity.issuerName && candidate.issuer === identity.iss)
    if (issuer === undefined) return `issuer "${identity.issuerName}" (${identity.iss}) is no longer trusted`
    try {
      checkClaims(identity.claims, issuer, Date.now())
    } catch (err) {
      if (err instanceof GatewayError) return `the token is no longer accepted (${err.detail.replace(/\.$/, '')})`
      throw err
    }
    return null
  }

  return {
    metadataPath,
    metadataUrl,
    metadata: () => ({
      resource: mcp.resource,
      authorization_servers: authorizationServers,
      bearer_methods_supported: ['header'],
      ...(mcp.scopes.length > 0 ? { scopes_supported: mcp.scopes } : {}),
      resource_name: 'Bouncer MCP gateway',
    }),
    async authenticate(ctx) {
      const authorization = ctx.headers?.authorization
      const presented = { headers: ctx.headers, rawHeaders: ctx.req.rawHeaders, query: ctx.query, socket: ctx.connection, viaTrustedProxy: ctx.viaTrustedProxy }
      const verify = () => tokens.verify(authorization, ctx.query, certificateOf, presented)
      let identity
      try {
        identity = await (deps.authFailures ? deps.authFailures.guarded(ctx.clientIp, verify) : verify())
      } catch (err) {
        if (!(err instanceof GatewayError) || err.status !== 401) throw err
        const invalid = authorization === undefined ? '' : `, error="invalid_token", error_description="${err.code}"`
        throw new GatewayError(err.code, { detail: err.detail, headers: { 'www-authenticate': challenge(invalid) } })
      }
      const lacking = scopesLacking(mcp, identity.claims)
      if (lacking !== null) throw new GatewayError('policy_denied', { detail: lacking, headers: { 'www-authenticate': challenge(', error="insufficient_scope"') } })
      return {
        identity,
        credential: identity.grantedRoles === undefined ? 'bearer' : 'exchanged',
        roles: deps.access.resolver.rolesFor(identity),
        clientIp: ctx.clientIp,
        userAgent: ctx.headers?.userAgent ?? null,
      }
    },
    refusalOf(caller) {
      const refusal = tokenRefusal(caller)
      if (refusal !== null) return refusal
      const lacking = scopesLacking(mcp, caller.identity.claims)
      return lacking === null ? null : lacking.replace(/^The token/, 'the token').replace(/\.$/, '')
    },
    checkOrigin(origin) {
      if (origin === undefined || allowedOrigins.has('*') || allowedOrigins.has(origin)) return
      // The caller's value, bounded and quoted (as a route's CORS refusal has it): it cannot pass for the sentence around it.
      throw new GatewayError('cors_origin_denied', { detail: `Origin ${JSON.stringify(truncateClientValue(origin, 128))} may not call this MCP endpoint (mcp.allowed_origins).` })
    },
  }
}

/**
 * The gateway's own token exchange, when it issues tokens for this resource (token_exchange.audiences
 * names mcp.resource): the endpoint accepts those tokens, so the metadata names their issuer too
 * (RFC 9728 §2), after the identity providers (the exchange grants no sign-in of its own). The probe
 * found it left out, so a client reading the metadata never learnt where a delegated token comes from.
 */
function exchangeIssuerFor(config: Config, mcp: McpConfig): string[] {
  const exchange = config.token_exchange
  return exchange && exchangeIssuesFor(config, mcp.resource) ? [issuerOf(exchange)] : []
}

/** Does the gateway's token exchange issue tokens for this MCP resource (token_exchange.audiences lists it)? The endpoint takes them only then. */
export function exchangeIssuesFor(config: Config, resource: string): boolean {
  const exchange = config.token_exchange
  return exchange?.enabled === true && audiencesOf(exchange).includes(resource)
}

/** Why a token's claims lack what mcp.scopes requires (the 403 insufficient_scope's detail), or null (explain reads it too). */
export function scopesLacking(mcp: Pick<McpConfig, 'scopes'>, claims: Readonly<Record<string, unknown>>): string | null {
  const missing = mcp.scopes.filter((s) => !scopesOf(claims).has(s))
  return missing.length === 0 ? null : `The token lacks the scope${missing.length === 1 ? '' : 's'} ${missing.join(', ')} this MCP endpoint needs.`
}

/** OAuth `scope` (space-separated) or `scp` (an array, or a string as Entra ID writes it). */
function scopesOf(claims: Readonly<Record<string, unknown>>): Set<string> {
  const scopes = new Set<string>()
  for (const value of [claims.scope, claims.scp]) {
    if (typeof value === 'string') for (const s of value.split(' ')) if (s !== '') scopes.add(s)
    if (Array.isArray(value)) for (const s of value) if (typeof s === 'string') scopes.add(s)
  }
  return scopes
}
