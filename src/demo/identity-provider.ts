// A real OpenID provider (oidc-provider) for service accounts: each client gets JWT access tokens
// for the gateway's audience through the client-credentials grant, the way a BI tool's scheduled
// reports or an agent runtime would. The demo runs it; the test suite runs it too.
import type { JWK } from 'jose'
import Provider, { type Adapter, type AdapterPayload } from 'oidc-provider'

export interface ServiceAccount {
  clientId: string
  secret: string
  /** Extra claims put in its access tokens (e.g. tenant, groups). */
  claims?: Record<string, unknown>
}

export interface OpenIdProviderOptions {
  /** Private signing keys (JWKs with kid and alg); tokens are signed with the first of `signWith`. */
  keys: JWK[]
  signWith: 'ES256' | 'RS256'
  clients: ServiceAccount[]
  /** The `aud` of access tokens when a client names no resource. */
  audience: string
  scope: string
  tokenTtlSeconds: number
  /**
   * Access tokens for this resource (audience) are opaque, not JWTs: checked through the RFC 7662
   * introspection endpoint (/token/introspection) and revoked at RFC 7009's (/token/revocation).
   */
  opaqueAudience?: string
}

/**
 * Keeps the provider's state in this process's memory. Client-credentials tokens in JWT format
 * need almost none; this replaces oidc-provider's built-in development adapter, which prints a
 * warning on every start.
 */
class MemoryAdapter implements Adapter {
  private static readonly items = new Map<string, AdapterPayload>()
  private readonly name: string
  constructor(name: string) {
    this.name = name
  }
  private key(id: string): string {
    return `${this.name}:${id}`
  }
  async upsert(id: string, payload: AdapterPayload): Promise<void> {
    MemoryAdapter.items.set(this.key(id), payload)
  }
  async find(id: string): Promise<AdapterPayload | undefined> {
    return MemoryAdapter.items.get(this.key(id))
  }
  async findByUserCode(): Promise<undefined> {
    return undefined
  }
  async findByUid(): Promise<undefined> {
    return undefined
  }
  async consume(id: string): Promise<void> {
    const item = MemoryAdapter.items.get(this.key(id))
    if (item) item.consumed = Math.floor(Date.now() / 1000)
  }
  async destroy(id: string): Promise<void> {
    MemoryAdapter.items.delete(this.key(id))
  }
  async revokeByGrantId(grantId: string): Promise<void> {
    for (const [key, item] of MemoryAdapter.items) if (item.grantId === grantId) MemoryAdapter.items.delete(key)
  }
}

export function openIdProvider(issuer: string, options: OpenIdProviderOptions): Provider {
  const byClient = new Map(options.clients.map((c) => [c.clientId, c]))
  return new Provider(issuer, {
    adapter: MemoryAdapter,
    jwks: { keys: options.keys as never },
    clients: options.clients.map((c) => ({
      client_id: c.clientId,
      client_secret: c.secret,
      grant_types: ['client_credentials'],
      redirect_uris: [],
      response_types: [],
      id_token_signed_response_alg: options.signWith,
    })),
    features: {
      clientCredentials: { enabled: true },
      devInteractions: { enabled: false },
      // Any confidential client may introspect, and revoke its own tokens (oidc-provider's defaults, spelt out).
      introspection: { enabled: options.opaqueAudience !== undefined, allowedPolicy: async () => true },
      revocation: { enabled: options.opaqueAudience !== undefined, allowedPolicy: async (_ctx: unknown, client: { clientId: string }, token: { clientId?: string }) => client.clientId === token.clientId },
      resourceIndicators: {
        enabled: true,
        defaultResource: () => options.audience,
        getResourceServerInfo: (_ctx: unknown, resource: string) => ({
          scope: options.scope,
          audience: resource,
          accessTokenTTL: options.tokenTtlSeconds,
          accessTokenFormat: resource === options.opaqueAudience ? 'opaque' : 'jwt',
          jwt: { sign: { alg: options.signWith } },
        }),
      },
    },
    extraTokenClaims: (_ctx: unknown, token: { clientId?: string }) => byClient.get(token.clientId ?? '')?.claims,
    ttl: { ClientCredentials: options.tokenTtlSeconds },
  } as never)
}
