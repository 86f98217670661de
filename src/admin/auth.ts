// Admin API access: a static bearer token (admin.token), compared in constant time. Hashing both
// sides first makes the comparison independent of the token's length as well as its content.
import { createHash, timingSafeEqual } from 'node:crypto'
import { GatewayError } from '../errors/index.ts'
import { bearerToken } from '../http/index.ts'

export interface AdminAuth {
  readonly configured: boolean
  /** Throws 401 unless the request carries the admin credential. */
  check(authorization: string | undefined): void
}

function digest(text: string): Buffer {
  return createHash('sha256').update(text).digest()
}

export function adminAuth(token: string | undefined): AdminAuth {
  const expected = token === undefined ? undefined : digest(token)
  return {
    configured: expected !== undefined,
    check(authorization) {
      if (!expected) {
        throw new GatewayError('unauthorized', {
          detail: 'The admin API is disabled: configure admin.token to use it.',
          headers: { 'www-authenticate': 'Bearer realm="bouncer-admin"' },
        })
      }
      if (authorization === undefined) {
        throw new GatewayError('missing_token', { detail: 'The admin API needs a bearer token.', headers: { 'www-authenticate': 'Bearer realm="bouncer-admin"' } })
      }
      const token = bearerToken(authorization)
      if (typeof token !== 'string' || !timingSafeEqual(digest(token), expected)) {
        throw new GatewayError('unauthorized', {
          detail: 'The admin token is not valid.',
          headers: { 'www-authenticate': 'Bearer realm="bouncer-admin", error="invalid_token"' },
        })
      }
    },
  }
}
