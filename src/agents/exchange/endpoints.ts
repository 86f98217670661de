// The token exchange's endpoints, as built-in routes of the gateway (gateway/built-ins.ts): the
// token endpoint, its metadata (RFC 8414) and the keys its tokens are signed with (RFC 7517).
// Present only while token_exchange is enabled.
import { GatewayError } from '../../errors/index.ts'
import { nothingServed, type Backend } from '../../request/index.ts'
import { EXCHANGE_JWKS_PATH, issuerOf, METADATA_PATH, TOKEN_PATH } from './issuer.ts'
import type { PublishedKeySet } from './keys.ts'
import { TOKEN_EXCHANGE_GRANT, tokenEndpoint, type TokenEndpointOptions } from './token-endpoint.ts'

export interface ExchangeEndpoint {
  id: string
  path: string
  backend: Backend
}

export function tokenExchangeEndpoints(options: TokenEndpointOptions): ExchangeEndpoint[] {
  const issuer = issuerOf(options.exchange)
  // RFC 8414 §2: what a client needs to find the endpoint and verify what it issues.
  const metadata = {
    issuer,
    token_endpoint: `${issuer}${TOKEN_PATH}`,
    jwks_uri: `${issuer}${EXCHANGE_JWKS_PATH}`,
    grant_types_supported: [TOKEN_EXCHANGE_GRANT],
    // The agent proves who it is with its actor_token, not with a client secret.
    token_endpoint_auth_methods_supported: ['none'],
    response_types_supported: [],
    scopes_supported: [...new Set(options.exchange.actors.flatMap((actor) => actor.delegated_roles))].filter((role) => role !== '*'),
  }
  return [
    { id: 'builtin/oauth-token', path: TOKEN_PATH, backend: tokenEndpoint(options) },
    { id: 'builtin/oauth-metadata', path: METADATA_PATH, backend: documentBackend(METADATA_PATH, 'application/json', () => metadata) },
    { id: 'builtin/oauth-jwks', path: EXCHANGE_JWKS_PATH, backend: documentBackend(EXCHANGE_JWKS_PATH, 'application/jwk-set+json', () => options.keys()?.jwks() ?? emptyKeySet()) },
  ]
}

function emptyKeySet(): PublishedKeySet {
  return { keys: [] }
}

/** A JSON document answered to GET and HEAD, cacheable for a minute (keys rotate slower than that). */
function documentBackend(path: string, contentType: string, document: () => unknown): Backend {
  return {
    upstream: null,
    async serve(ctx, exchange) {
      if (ctx.method !== 'GET' && ctx.method !== 'HEAD') {
        throw new GatewayError('method_not_allowed', { detail: `${path} answers GET.`, headers: { allow: 'GET, HEAD' } })
      }
      const body = JSON.stringify(document())
      const served = nothingServed()
      served.status = 200
      served.bytesOut = ctx.method === 'HEAD' ? 0 : Buffer.byteLength(body)
      if (exchange.beforeEnd) await exchange.beforeEnd(served)
      ctx.res.writeHead(200, { 'content-type': contentType, 'content-length': Buffer.byteLength(body), 'cache-control': 'max-age=60', 'x-request-id': ctx.id })
      ctx.res.end(ctx.method === 'HEAD' ? undefined : body)
      return served
    },
  }
}
