// The api_key credential: a key in the configured header (X-API-Key by default) or as
// `Authorization: Bearer bk_…`, for tools that can send nothing else (BI connectors, spreadsheets,
// webhooks). Its identity is the key's principal under the issuer `api-keys`, so trust rules,
// policies, limits and the audit record treat it like any other caller; the record's client_id is
// the key's id, so the log says which key was used.
//
// Per request, with the record cached: one scan of the raw headers, one regex on the key, an LRU
// hit, SHA-256 of the secret and a constant-time compare, and a Map write for the last-used time.
// Measured (bench/identity.ts): 2.7 µs against 2.0 µs for a cached JWT; SHA-256 is most of the
// difference (1.7% of the bouncer-api-key case's CPU profile).
import { GatewayError, oauthErrorText, type ErrorCode } from '../../errors/index.ts'
import { bearerToken, isApiKeyBearer } from '../../http/index.ts'
import { CredentialRefused, type Authenticated, type CredentialInput, type CredentialVerifier } from '../authenticate.ts'
import type { ApiKeyDirectory } from './directory.ts'
import { parseApiKey, secretMatches } from './key.ts'
import { ApiKeyReadsBusy } from './store.ts'

export function apiKeyVerifier(directory: ApiKeyDirectory, header: string, now: () => number = Date.now): CredentialVerifier {
  const name = header.toLowerCase()
  return {
    kind: 'api_key',
    presentIn: (input) => keyHeader(input.rawHeaders, name).count > 0 || isApiKeyBearer(input.headers?.authorization),
    async authenticate(input) {
      const presented = presentedKey(input, name, header)
      const parsed = parseApiKey(presented)
      if (!parsed) throw refusal('api_key_invalid', 'The API key is not of the form bk_<id>_<secret>.')
      const at = now()
      let known
      try {
        const found = directory.lookup(parsed.id)
        known = found instanceof Promise ? await found : found
      } catch (err) {
        const busy = err instanceof ApiKeyReadsBusy
        throw new GatewayError('identity_provider_unavailable', {
          detail: busy
            ? 'Too many API keys not used lately are waiting to be checked: this one cannot be checked right now.'
            : `The API key store cannot be read: API keys cannot be checked right now.`,
          headers: { 'retry-after': '1' },
          cause: err,
        })
      }
      // One answer for an unknown id and a wrong secret. Ids are no secret (listed, and logged as
      // client_id); the secret is, and it is only ever compared through its hash, in constant time.
      // Neither names a caller in the audit record: the id is the sender's choice, proven by nothing.
      if (known === undefined || !secretMatches(parsed.secret, known.hash)) throw refusal('api_key_invalid', 'The API key is not valid.')
      const { record } = known
      // The secret matched: the key's holder, whom the audit record names (its id as client_id).
      const holder = { identity: known.identity, credential: 'api_key' as const }
      if (record.revokedAt !== null) throw refusal('api_key_revoked', `The API key ${record.id} was revoked at ${new Date(record.revokedAt).toISOString()}.`, holder)
      if (record.expiresAt !== null && record.expiresAt <= at) {
        throw refusal('api_key_invalid', `The API key ${record.id} expired at ${new Date(record.expiresAt).toISOString()}.`, holder)
      }
      directory.used(record.id, at)
      return { identity: known.identity, credential: 'api_key' }
    },
    // The key the handshake proved is the identity's client_id: read again by it, not from the
    // handshake's headers under today's api_keys.header, which a reload that renamed the header made
    // unreadable (missing_token at each recheck), so a revoked key's tunnels stayed open (a probe).
    async revoked(_input, identity) {
      const id = identity.clientId
      if (id === null) return null
      const found = directory.lookup(id)
      const known = found instanceof Promise ? await found : found
      if (known === undefined) return `The caller's API key ${id} no longer exists`
      const { revokedAt } = known.record
      return revokedAt === null ? null : `The caller's API key ${id} was revoked at ${new Date(revokedAt).toISOString()}`
    },
  }
}

/** The one key the request carries; two (two headers, or a header and a bearer key) are ambiguous. */
function presentedKey(input: CredentialInput, name: string, header: string): string {
  const { count, value } = keyHeader(input.rawHeaders, name)
  const authorization = input.headers?.authorization
  const bearer = isApiKeyBearer(authorization) ? bearerToken(authorization) : undefined
  if (count > 1) throw new GatewayError('bad_request', { detail: `The request carries ${count} ${header} headers: send one API key.` })
  if (count === 1 && bearer !== undefined) {
    throw new GatewayError('bad_request', { detail: `The request carries an API key in both ${header} and Authorization: send one.` })
  }
  // A key never holds a comma: this is two headers a proxy merged into one (RFC 9110 §5.3), as ambiguous as two.
  if (count === 1 && value.includes(',')) throw new GatewayError('bad_request', { detail: `The request's ${header} header holds ${value.split(',').length} comma-separated values (headers merged by a proxy?): send one API key.` })
  if (count === 1) return value
  if (typeof bearer === 'string') return bearer
  if (bearer !== undefined) throw refusal('api_key_invalid', 'The Authorization header is not "Bearer <API key>".')
  throw new GatewayError('missing_token', {
    detail: `This route needs an API key (${header}: bk_…, or Authorization: Bearer bk_…).`,
    headers: { 'www-authenticate': 'Bearer' },
  })
}

/** How many times the key header is there (more than once is ambiguous), and its first value. */
function keyHeader(raw: readonly string[], name: string): { count: number; value: string } {
  let count = 0
  let value = ''
  for (let i = 0; i < raw.length; i += 2) {
    const candidate = raw[i] as string
    if (candidate.length !== name.length || candidate.toLowerCase() !== name) continue
    if (count++ === 0) value = (raw[i + 1] as string).trim()
  }
  return { count, value }
}

function refusal(code: ErrorCode, detail: string, holder?: Authenticated): GatewayError {
  const options = { detail, headers: { 'www-authenticate': `Bearer error="invalid_token", error_description="${oauthErrorText(detail)}"` } }
  return holder === undefined ? new GatewayError(code, options) : new CredentialRefused(code, options, holder)
}
