// A real OpenID provider (oidc-provider) on 127.0.0.1, with service-account clients that get JWT
// access tokens through the client-credentials grant, fetched by a real client (openid-client).
// It can be stopped and restarted on the same port with other keys (a key rotation), and it hands
// its private keys to tests that must mint tokens the provider would never issue (attacks).
import { once } from 'node:events'
import { createServer, type Server, type ServerResponse } from 'node:http'
import type { AddressInfo, Socket } from 'node:net'
import { exportJWK, generateKeyPair, importJWK, SignJWT, type JWK, type JWTPayload } from 'jose'
import { openIdProvider, type Person, type ServiceAccount, type WebClient } from '../../src/demo/identity-provider.ts'
import { providerHandler } from '../../src/demo/sign-in-pages.ts'
import * as client from 'openid-client'
import { Agent, fetch as undiciFetch } from 'undici'

export interface SigningKey {
  kid: string
  alg: 'RS256' | 'ES256'
  privateJwk: JWK
  publicJwk: JWK
}

export async function signingKey(kid: string, alg: 'RS256' | 'ES256'): Promise<SigningKey> {
  const { privateKey, publicKey } = await generateKeyPair(alg, { extractable: true })
  return {
    kid,
    alg,
    privateJwk: { ...(await exportJWK(privateKey)), kid, alg, use: 'sig' },
    publicJwk: { ...(await exportJWK(publicKey)), kid, alg, use: 'sig' },
  }
}

export type { Person, ServiceAccount, WebClient }

export interface ProviderOptions {
  port?: number
  keys?: SigningKey[]
  /** The key access tokens are signed with (default: the first ES256 key). */
  signWith?: 'RS256' | 'ES256'
  clients?: ServiceAccount[]
  tokenTtlSeconds?: number
  /** Tokens for this resource are opaque: checked at /token/introspection, revoked at /token/revocation. */
  opaqueAudience?: string
  /** People who sign in at the provider's login page (authorization code flow), and the browser clients they sign in to. */
  people?: Person[]
  webClients?: WebClient[]
  idTokenTtlSeconds?: number
  /** Every refresh spends its refresh token and gives a new one. */
  rotateRefreshTokens?: boolean
}

export interface TestIdentityProvider {
  issuer: string
  port: number
  keys: SigningKey[]
  /** A real access token for a client, through the client-credentials grant. */
  token(clientId: string, options?: { resource?: string }): Promise<string>
  /** A token the provider never issued, signed with one of its keys (or any key), built with jose. */
  mint(claims: JWTPayload, options?: { key?: SigningKey; header?: Record<string, unknown> }): Promise<string>
  stop(): Promise<void>
  /** Starts again on the same port and issuer, with new keys (a rotation). */
  restart(keys?: SigningKey[]): Promise<void>
  /** Revokes a token at the provider (RFC 7009), as its client. */
  revoke(clientId: string, token: string): Promise<void>
  /** How many times the JWKS endpoint has been fetched. */
  readonly jwksFetches: number
  /** How many introspection requests the provider has answered (RFC 7662). */
  readonly introspections: number
  /** Requests to the token endpoint (code exchanges and refreshes included). */
  readonly tokenRequests: number
  /**
   * Rewrites the token endpoint's JSON answers while set (a hostile or broken provider: an ID token
   * it would never sign, a wrong audience…); the provider itself answered as it always does.
   */
  rewriteTokens: ((answer: Record<string, unknown>) => Promise<Record<string, unknown>> | Record<string, unknown>) | null
}

export const AUDIENCE = 'api://bouncer'

export const DEFAULT_CLIENTS: ServiceAccount[] = [
  { clientId: 'looker-reports', secret: 'looker-reports-secret-0123456789', claims: { tenant: 'acme' } },
  { clientId: 'analytics-agent', secret: 'analytics-agent-secret-012345678', claims: { tenant: 'acme', groups: ['agents', 'readers'] } },
  { clientId: 'no-tenant', secret: 'no-tenant-secret-0123456789abcdef' },
]

export async function startIdentityProvider(options: ProviderOptions = {}): Promise<TestIdentityProvider> {
  let keys = options.keys ?? [await signingKey('rsa-1', 'RS256'), await signingKey('ec-1', 'ES256')]
  const clients = options.clients ?? DEFAULT_CLIENTS
  const signWith = options.signWith ?? 'ES256'
  let server: Server | undefined
  const sockets = new Set<Socket>()
  let port = options.port ?? 0
  let issuer = ''
  let jwksFetches = 0
  let introspections = 0
  let tokenRequests = 0
  let rewriteTokens: TestIdentityProvider['rewriteTokens'] = null
  // The client's own connection pool, replaced on every start: a restarted provider must not be
  // reached through a keep-alive socket of the previous one.
  let agent = new Agent()

  async function start(): Promise<void> {
    agent = new Agent()
    server = createServer()
    server.on('connection', (socket) => {
      sockets.add(socket)
      socket.on('close', () => sockets.delete(socket))
    })
    server.listen(port, '127.0.0.1')
    await once(server, 'listening')
    port = (server.address() as AddressInfo).port
    issuer = `http://127.0.0.1:${port}`
    const signingAlg = keys.some((k) => k.alg === signWith) ? signWith : (keys[0] as SigningKey).alg
    const provider = openIdProvider(issuer, {
      keys: keys.map((k) => k.privateJwk),
      signWith: signingAlg,
      clients,
      audience: AUDIENCE,
      scope: 'reports:read',
      tokenTtlSeconds: options.tokenTtlSeconds ?? 600,
      opaqueAudience: options.opaqueAudience,
      people: options.people,
      webClients: options.webClients,
      idTokenTtlSeconds: options.idTokenTtlSeconds,
      rotateRefreshTokens: options.rotateRefreshTokens,
    })
    const callback = providerHandler(provider, options.people ?? [])
    server.on('request', (req, res) => {
      if (req.url === '/jwks') jwksFetches++
      if (req.url === '/token/introspection') introspections++
      if (req.url === '/token') tokenRequests++
      if (req.url === '/token' && rewriteTokens !== null) rewritten(res, rewriteTokens)
      void callback(req, res)
    })
  }

  /** Holds the provider's answer back (oidc-provider sets its status and headers, then ends), and sends what `rewrite` makes of its JSON instead. */
  function rewritten(res: ServerResponse, rewrite: NonNullable<TestIdentityProvider['rewriteTokens']>): void {
    const chunks: Buffer[] = []
    const end = res.end.bind(res)
    res.write = ((chunk: unknown) => {
      if (chunk) chunks.push(Buffer.from(chunk as Buffer))
      return true
    }) as typeof res.write
    res.end = ((chunk?: unknown) => {
      if (chunk && typeof chunk !== 'function') chunks.push(Buffer.from(chunk as Buffer))
      void (async () => {
        const body = JSON.stringify(await rewrite(JSON.parse(Buffer.concat(chunks).toString('utf8')) as Record<string, unknown>))
        res.setHeader('content-length', Buffer.byteLength(body))
        end(body)
      })().catch(() => res.destroy())
      return res
    }) as typeof res.end
  }

  async function stop(): Promise<void> {
    if (!server) return
    for (const socket of sockets) socket.destroy()
    server.close()
    await once(server, 'close')
    server = undefined
    await agent.close()
  }

  await start()

  return {
    get issuer() {
      return issuer
    },
    get port() {
      return port
    },
    get keys() {
      return keys
    },
    get jwksFetches() {
      return jwksFetches
    },
    get introspections() {
      return introspections
    },
    get tokenRequests() {
      return tokenRequests
    },
    get rewriteTokens() {
      return rewriteTokens
    },
    set rewriteTokens(rewrite) {
      rewriteTokens = rewrite
    },
    async revoke(clientId, token) {
      const account = clients.find((c) => c.clientId === clientId)
      if (!account) throw new Error(`no client ${clientId}`)
      const res = await undiciFetch(`${issuer}/token/revocation`, {
        method: 'POST',
        dispatcher: agent,
        headers: { authorization: `Basic ${Buffer.from(`${clientId}:${account.secret}`).toString('base64')}`, 'content-type': 'application/x-www-form-urlencoded' },
        body: new URLSearchParams({ token, token_type_hint: 'access_token' }).toString(),
      })
      if (res.status !== 200) throw new Error(`revocation answered ${res.status}: ${await res.text()}`)
    },
    async token(clientId, tokenOptions = {}) {
      const account = clients.find((c) => c.clientId === clientId)
      if (!account) throw new Error(`no client ${clientId}`)
      const fetchVia = ((url: string, init: object) => undiciFetch(url, { ...init, dispatcher: agent })) as unknown as client.CustomFetch
      const config = await client.discovery(new URL(issuer), clientId, account.secret, undefined, { execute: [client.allowInsecureRequests], [client.customFetch]: fetchVia })
      const tokens = await client.clientCredentialsGrant(config, { resource: tokenOptions.resource ?? AUDIENCE, scope: 'reports:read' })
      return tokens.access_token
    },
    async mint(claims, mintOptions = {}) {
      const key = mintOptions.key ?? (keys.find((k) => k.alg === signWith) as SigningKey)
      const now = Math.floor(Date.now() / 1000)
      return new SignJWT({ iss: issuer, aud: AUDIENCE, sub: 'minted', iat: now, exp: now + 300, ...claims })
        .setProtectedHeader({ alg: key.alg, kid: key.kid, typ: 'at+jwt', ...mintOptions.header })
        .sign(await importJWK(key.privateJwk, key.alg))
    },
    stop,
    async restart(nextKeys) {
      await stop()
      if (nextKeys) keys = nextKeys
      await start()
    },
  }
}
