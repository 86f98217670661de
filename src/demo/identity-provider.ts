// A real OpenID provider (oidc-provider) for service accounts: each client gets JWT access tokens
// for the gateway's audience through the client-credentials grant, the way a BI tool's scheduled
// reports or an agent runtime would. With `people` and `webClients` it is also the company SSO a
// person signs in at through a browser (authorization code flow): a small login page of its own
// (sign-in.ts). The demo runs it; the test suite runs it too.
import type { JWK } from 'jose'
import Provider, { type Adapter, type AdapterPayload } from 'oidc-provider'
import { PERSON_SCOPES, personAccounts, signOutPage, type Person, type WebClient } from './sign-in-pages.ts'

export type { Person, WebClient }

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
  /** People who sign in with a username and password at the provider's login page. */
  people?: Person[]
  /** Browser-facing applications (the gateway's sign_in) that people sign in to. */
  webClients?: WebClient[]
  /** How long ID tokens live (default: tokenTtlSeconds). */
  idTokenTtlSeconds?: number
  /** Every refresh gives a new refresh token and spends the old one (Auth0, Okta, Entra for SPAs); by default only near its end. */
  rotateRefreshTokens?: boolean
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
  async findByUid(uid: string): Promise<AdapterPayload | undefined> {
    for (const [key, item] of MemoryAdapter.items) if (key.startsWith(`${this.name}:`) && item.uid === uid) return item
    return undefined
  }
  async consume(id: string): Promise<void> {
    const item = MemoryAdapter.items.get(this.key(id))
    if (item) item.consumed = Math.floor(Date.now() / 1000)
  }
  async destroy(id: string): Promise<void> {
    MemoryAdapter.items.delete(this.key(id))
  }
  static forgetAccount(accountId: string): number {
    let forgotten = 0
    for (const [key, item] of MemoryAdapter.items) {
      if (item.accountId === accountId) {
        MemoryAdapter.items.delete(key)
        forgotten++
      }
    }
    return forgotten
  }
  async revokeByGrantId(grantId: string): Promise<void> {
    for (const [key, item] of MemoryAdapter.items) if (item.grantId === grantId) MemoryAdapter.items.delete(key)
  }
}

/** Forgets every grant (and so every refresh token) of a person: as an administrator disabling them would. */
export function revokeGrantsOf(accountId: string): number {
  return MemoryAdapter.forgetAccount(accountId)
}

export function openIdProvider(issuer: string, options: OpenIdProviderOptions): Provider {
  const byClient = new Map(options.clients.map((c) => [c.clientId, c]))
  const people = personAccounts(options.people ?? [])
  const idTokenTtl = options.idTokenTtlSeconds ?? options.tokenTtlSeconds
  return new Provider(issuer, {
    adapter: MemoryAdapter,
    jwks: { keys: options.keys as never },
    clients: [
      ...options.clients.map((c) => ({
        client_id: c.clientId,
        client_secret: c.secret,
        grant_types: ['client_credentials'],
        redirect_uris: [],
        response_types: [],
        id_token_signed_response_alg: options.signWith,
      })),
      ...(options.webClients ?? []).map((c) => ({
        client_id: c.clientId,
        client_secret: c.secret,
        grant_types: ['authorization_code', 'refresh_token'],
        response_types: ['code'],
        redirect_uris: c.redirectUris,
        post_logout_redirect_uris: c.postLogoutRedirectUris,
        token_endpoint_auth_method: 'client_secret_post',
        id_token_signed_response_alg: options.signWith,
      })),
    ],
    // People: their claims (groups included) go in the ID token, which is what the gateway reads.
    findAccount: (_ctx: unknown, sub: string) => people.find(sub),
    claims: { openid: ['sub'], email: ['email', 'email_verified'], profile: ['name', 'preferred_username'], groups: ['groups'] },
    scopes: PERSON_SCOPES,
    conformIdTokenClaims: false,
    interactions: { url: (_ctx: unknown, interaction: { uid: string }) => `/interaction/${interaction.uid}` },
    // A first-party SSO: no consent screen, the scopes asked for are granted.
    loadExistingGrant: async (ctx: { oidc: { client?: { clientId: string }; session?: { accountId?: string; grantIdFor(id: string): string | undefined }; provider: Provider; result?: { consent?: { grantId?: string } } } }) => {
      const { client, session, provider } = ctx.oidc
      if (!client || !session?.accountId) return undefined
      const grantId = ctx.oidc.result?.consent?.grantId ?? session.grantIdFor(client.clientId)
      // A grant revoked (oidc-provider destroys the grant with a revoked refresh token: a gateway's
      // sign-out) is made again: the person is still signed in, and a company's SSO asks no consent.
      const existing = grantId ? await provider.Grant.find(grantId) : undefined
      if (existing) return existing
      const grant = new provider.Grant({ clientId: client.clientId, accountId: session.accountId })
      grant.addOIDCScope(PERSON_SCOPES.join(' '))
      await grant.save()
      return grant
    },
    // A refresh token for every browser client that may use one (no offline_access dance).
    issueRefreshToken: async (_ctx: unknown, client: { grantTypeAllowed(type: string): boolean }) => client.grantTypeAllowed('refresh_token'),
    ...(options.rotateRefreshTokens === true ? { rotateRefreshToken: true } : {}),
    pkce: { required: () => true },
    features: {
      clientCredentials: { enabled: true },
      devInteractions: { enabled: false },
      rpInitiatedLogout: { enabled: true, logoutSource: signOutPage },
      // Any confidential client may introspect, and revoke its own tokens (oidc-provider's defaults,
      // spelt out): a resource's opaque tokens, and a signed-out session's refresh token (RFC 7009).
      introspection: { enabled: options.opaqueAudience !== undefined, allowedPolicy: async () => true },
      revocation: { enabled: options.opaqueAudience !== undefined || (options.webClients?.length ?? 0) > 0, allowedPolicy: async (_ctx: unknown, client: { clientId: string }, token: { clientId?: string }) => client.clientId === token.clientId },
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
    ttl: {
      ClientCredentials: options.tokenTtlSeconds,
      AccessToken: options.tokenTtlSeconds,
      IdToken: idTokenTtl,
      AuthorizationCode: 60,
      RefreshToken: 86_400,
      Interaction: 600,
      Session: 86_400,
      Grant: 86_400,
    },
  } as never)
}
