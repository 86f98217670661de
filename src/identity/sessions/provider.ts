// The OpenID provider people sign in at, through openid-client (the protocol is not written by
// hand): discovery, the authorization URL with PKCE (S256), state and nonce, the callback's iss
// (RFC 9207, checked here first, so its refusal says so), the code exchange
// (openid-client checks state, PKCE, and the ID token's iss, aud, exp, iat and nonce), the
// refresh grant, RP-initiated logout's end_session_endpoint, and the revocation of a signed-out
// session's refresh token (RFC 7009). The ID token's signature is then checked by the gateway's own
// bearer-token verifier, with the issuer's keys (sign-in.ts).
//
// Discovery runs at the first sign-in, not at start: a gateway starts while its provider is down
// and serves its other routes. One discovery at a time; a failed one is retried by the next
// sign-in. openid-client itself is loaded then too: a gateway without sign_in never loads it.
import type * as Oidc from 'openid-client'
import type { IssuerConfig } from '../../config/index.ts'
import { GatewayError } from '../../errors/index.ts'

const PROVIDER_TIMEOUT_SECONDS = 10

export interface ProviderTokens {
  idToken: string | null
  refreshToken: string | null
  /** Seconds the access token lives, when the provider says. */
  expiresIn: number | null
}

export interface SignInProvider {
  authorizationUrl(parameters: Record<string, string>): Promise<URL>
  /** The code exchange for the callback URL the browser brought back; throws GatewayError. */
  exchangeCode(callbackUrl: URL, checks: { state: string; nonce: string; codeVerifier: string; redirectUri: string }): Promise<ProviderTokens>
  /** New tokens for a refresh token; `invalid_grant` (revoked or expired at the provider) is SignInRefused. */
  refresh(refreshToken: string): Promise<ProviderTokens>
  /** RP-initiated logout, when the provider has an end_session_endpoint; else null. */
  endSessionUrl(parameters: Record<string, string>): Promise<URL | null>
  /** RFC 7009: the provider revokes the refresh token; false when it has no revocation_endpoint. Throws as refresh does. */
  revokeRefreshToken(refreshToken: string): Promise<boolean>
}

/** The provider refused (a bad or replayed code, a revoked refresh token): the user must sign in again. */
export class SignInRefused extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options)
    this.name = 'SignInRefused'
  }
}

/**
 * The callback's `iss` is not the provider's (RFC 9207): the answer came from another provider the
 * browser was sent to (a mix-up attack), or something rewrote it. No code is exchanged.
 */
export class IssuerMismatch extends SignInRefused {
  constructor(message: string) {
    super(message)
    this.name = 'IssuerMismatch'
  }
}

/**
 * RFC 9207 §2.4, checked here before the code goes anywhere, as openid-client would: with its own
 * error, which the callback words as such (read as a refused code, it said "already used").
 */
function checkIssuerParameter(metadata: Oidc.ServerMetadata, parameters: URLSearchParams): void {
  const sent = parameters.getAll('iss')
  if (sent.length > 1) throw new IssuerMismatch('the callback carries several iss parameters')
  const iss = sent[0]
  if (iss === undefined) {
    if (metadata.authorization_response_iss_parameter_supported === true) throw new IssuerMismatch(`the callback carries no iss parameter, which ${metadata.issuer} always sends`)
    return
  }
  if (iss !== metadata.issuer) throw new IssuerMismatch(`the callback's iss is not ${metadata.issuer}`)
}

/**
 * The provider answered, and its answer fails the sign-in's checks: an ID token expired or not yet
 * valid, for another audience or issuer, with an algorithm not allowed or a signature that does not
 * verify; an answer missing what OAuth requires. Not the provider being unreachable (503, "try
 * again shortly"), and not its refusal of the code (a replayed callback): the detail says which check.
 */
export class AnswerRejected extends SignInRefused {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options)
    this.name = 'AnswerRejected'
  }
}

type OidcModule = typeof Oidc
let loading: Promise<OidcModule> | null = null
function openidClient(): Promise<OidcModule> {
  loading ??= import('openid-client')
  return loading
}

export function signInProvider(issuer: IssuerConfig, clientId: string, clientSecret: () => string | undefined): SignInProvider {
  let discovered: { secret: string | undefined; config: Promise<Oidc.Configuration> } | null = null
  let oidc: OidcModule

  function configuration(): Promise<Oidc.Configuration> {
    const secret = clientSecret()
    // A rotated client secret takes effect at the next sign-in.
    if (discovered && discovered.secret === secret) return discovered.config
    const config = oidc.discovery(
      new URL(issuer.issuer),
      clientId,
      // The same algorithm allow-list as the issuer's bearer tokens (oauth4webapi takes a list).
      { id_token_signed_response_alg: issuer.algorithms as unknown as string, [oidc.clockTolerance]: Math.ceil(issuer.clock_tolerance / 1000) },
      secret === undefined ? oidc.None() : oidc.ClientSecretPost(secret),
      { execute: issuer.issuer.startsWith('http:') ? [oidc.allowInsecureRequests] : [], timeout: PROVIDER_TIMEOUT_SECONDS },
    )
    const entry = { secret, config }
    discovered = entry
    config.catch(() => {
      if (discovered === entry) discovered = null
    })
    return config
  }

  async function ready(): Promise<Oidc.Configuration> {
    try {
      oidc ??= await openidClient()
      return await configuration()
    } catch (err) {
      throw unavailable(issuer, err)
    }
  }

  return {
    async authorizationUrl(parameters) {
      const config = await ready()
      return oidc.buildAuthorizationUrl(config, parameters)
    },
    async exchangeCode(callbackUrl, checks) {
      const config = await ready()
      checkIssuerParameter(config.serverMetadata(), callbackUrl.searchParams)
      try {
        const tokens = await oidc.authorizationCodeGrant(config, callbackUrl, {
          expectedState: checks.state,
          expectedNonce: checks.nonce,
          pkceCodeVerifier: checks.codeVerifier,
          idTokenExpected: true,
        }, { redirect_uri: checks.redirectUri })
        return tokensOf(tokens)
      } catch (err) {
        throw translate(oidc, issuer, err)
      }
    },
    async refresh(refreshToken) {
      const config = await ready()
      try {
        return tokensOf(await oidc.refreshTokenGrant(config, refreshToken))
      } catch (err) {
        throw translate(oidc, issuer, err)
      }
    },
    async endSessionUrl(parameters) {
      const config = await ready()
      if (config.serverMetadata().end_session_endpoint === undefined) return null
      return oidc.buildEndSessionUrl(config, parameters)
    },
    async revokeRefreshToken(refreshToken) {
      const config = await ready()
      if (config.serverMetadata().revocation_endpoint === undefined) return false
      try {
        await oidc.tokenRevocation(config, refreshToken, { token_type_hint: 'refresh_token' })
        return true
      } catch (err) {
        throw translate(oidc, issuer, err)
      }
    },
  }
}

function tokensOf(tokens: Oidc.TokenEndpointResponse): ProviderTokens {
  return {
    idToken: tokens.id_token ?? null,
    refreshToken: tokens.refresh_token ?? null,
    expiresIn: typeof tokens.expires_in === 'number' ? tokens.expires_in : null,
  }
}

/** openid-client's codes for an answer that is not the endpoint's (an unexpected status or content type). */
const NOT_AN_ANSWER = new Set(['OAUTH_RESPONSE_IS_NOT_CONFORM', 'OAUTH_RESPONSE_IS_NOT_JSON'])
/**
 * openid-client's codes for an answer that came and fails its checks (oauth4webapi's reason in the
 * cause). Read by its message, "JWT timestamp claim value failed validation" (an expired ID token:
 * the provider's clock off) and "unsupported operation" were taken for the provider being down:
 * 503 "cannot be reached right now; try again shortly" (an adversarial probe).
 */
const REJECTED = new Set([
  'OAUTH_INVALID_RESPONSE',
  'OAUTH_JWT_CLAIM_COMPARISON_FAILED',
  'OAUTH_JWT_TIMESTAMP_CHECK_FAILED',
  'OAUTH_JSON_ATTRIBUTE_COMPARISON_FAILED',
  'OAUTH_UNSUPPORTED_OPERATION',
  'OAUTH_PARSE_ERROR',
])

/**
 * OAuth error answers that say the provider cannot serve now, not that it refuses the person's
 * code or refresh token: a rate limit (429: Auth0's `too_many_requests`), `temporarily_unavailable`
 * (which Entra ID sends from its token endpoint) and `server_error`.
 */
const PROVIDER_BUSY = new Set(['temporarily_unavailable', 'server_error'])

/** The provider's own refusals (an OAuth error answer, a response that fails openid-client's checks) end the sign-in; the rest is the provider being unreachable. */
function translate(oidc: OidcModule, issuer: IssuerConfig, err: unknown): Error {
  if (err instanceof oidc.ResponseBodyError) {
    // Only an answer about the person's grant is a refusal: read as one, a refresh ended the
    // session of everyone whose ID token came due while the provider rate-limited the gateway, or
    // refused its client secret (rotated at one end first), and a callback said "already used"
    // (found by the people probe).
    if (err.error === 'invalid_client') return clientRefused(issuer, err)
    if (err.status === 429 || PROVIDER_BUSY.has(err.error)) return unavailable(issuer, err)
    return new SignInRefused(`the provider refused: ${err.error}${err.error_description ? ` (${err.error_description})` : ''}`, { cause: err })
  }
  if (err instanceof oidc.AuthorizationResponseError) return new SignInRefused(`the provider answered: ${err.error}`, { cause: err })
  if (err instanceof oidc.ClientError && REJECTED.has((err as { code?: string }).code ?? '') && !bodyUnread(err)) {
    const reason = err.cause instanceof Error ? err.cause.message : err.message
    return new AnswerRejected(reason.slice(0, 200), { cause: err })
  }
  // An answer that is no OAuth answer at all (a proxy's 502 page, a 503, HTML): the provider is not
  // there, which is no refusal. Read as one, a refresh deleted the user's session (401) and a
  // callback answered 400, where the provider being down is 503 (docs/people.md).
  if (err instanceof oidc.ClientError && NOT_AN_ANSWER.has((err as { code?: string }).code ?? '')) return unavailable(issuer, err)
  if (err instanceof oidc.ClientError && /unexpected|invalid|missing|mismatch/i.test(err.message) && !/fetch|network|timeout/i.test(err.message)) {
    return new SignInRefused(err.message, { cause: err })
  }
  return unavailable(issuer, err)
}

/**
 * OAUTH_PARSE_ERROR of the answer's body, not of its ID token: a JSON answer that did not arrive
 * whole (the connection dropped mid-body, a proxy's truncated page) is no answer, as NOT_AN_ANSWER's
 * are. Read as one that fails its checks, a refresh ended the person's session for a network failure.
 */
function bodyUnread(err: Error): boolean {
  if ((err as { code?: string }).code !== 'OAUTH_PARSE_ERROR') return false
  // openid-client's error, or oauth4webapi's in its cause, names what failed to parse.
  return err.message.includes('"response" body') || (err.cause instanceof Error && err.cause.message.includes('"response" body'))
}

/** The provider refuses the gateway's own client credentials (RFC 6749 §5.2 invalid_client): no person's sign-in or refresh can succeed until an operator fixes them. */
function clientRefused(issuer: IssuerConfig, err: Error): GatewayError {
  return new GatewayError('identity_provider_unavailable', {
    detail: `The sign-in provider of issuer "${issuer.name}" refuses the gateway's client credentials (invalid_client): sign_in.client_id or client_secret is not what it has registered. Signed-in sessions are kept.`,
    cause: err,
  })
}

function unavailable(issuer: IssuerConfig, err: unknown): GatewayError {
  return new GatewayError('identity_provider_unavailable', {
    detail: `The sign-in provider of issuer "${issuer.name}" cannot be reached right now; try again shortly.`,
    headers: { 'retry-after': '5' },
    cause: err,
  })
}
