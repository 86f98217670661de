// The token exchange's endpoints, as built-in routes of the gateway (gateway/built-ins.ts): the
// token endpoint, its metadata (RFC 8414) and the keys its tokens are signed with (RFC 7517).
// Present only while token_exchange is enabled.
import { PUBLIC_DOCUMENT_CORS, type CorsPolicy } from '../../http/index.ts'
import { documentBackend, type Backend } from '../../request/index.ts'
import { EXCHANGE_JWKS_PATH, issuerOf, METADATA_PATH, TOKEN_PATH } from './issuer.ts'
import type { PublishedKeySet } from './keys.ts'
import { TOKEN_EXCHANGE_GRANT, tokenEndpoint, type TokenEndpointOptions } from './token-endpoint.ts'

/** Cacheable for a minute: keys rotate slower than that. */
const KEYS_CACHE = 'max-age=60'

export interface ExchangeEndpoint {
  id: string
  path: string
  backend: Backend
  /** A public document's CORS (its preflight granted); the token endpoint has none. */
  cors?: CorsPolicy
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
  // Public documents, readable from any page (PUBLIC_DOCUMENT_CORS): a browser MCP client follows
  // the protected resource's metadata to these.
  const documentHeaders = (type: string) => ({ 'content-type': type, 'cache-control': KEYS_CACHE })
  return [
    { id: 'builtin/oauth-token', path: TOKEN_PATH, backend: tokenEndpoint(options) },
    { id: 'builtin/oauth-metadata', path: METADATA_PATH, backend: documentBackend(METADATA_PATH, documentHeaders('application/json'), () => metadata), cors: PUBLIC_DOCUMENT_CORS },
    { id: 'builtin/oauth-jwks', path: EXCHANGE_JWKS_PATH, backend: documentBackend(EXCHANGE_JWKS_PATH, documentHeaders('application/jwk-set+json'), () => options.keys()?.jwks() ?? emptyKeySet()), cors: PUBLIC_DOCUMENT_CORS },
  ]
}

function emptyKeySet(): PublishedKeySet {
  return { keys: [] }
}
