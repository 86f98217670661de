// Admin API access: a static bearer token (admin.token) for every action, and optionally a second
// one (admin.read_token) that reads but changes nothing (no reload, no verify, no revoke), compared
// in constant time. Hashing both sides first makes the comparison independent of the token's
// length as well as its content. Browser sign-in (SPEC `sign_in` with `admin.roles`) is another way
// to the same AdminCaller: it plugs in here, and the API and the console only ever see the caller.
import { createHash, timingSafeEqual } from 'node:crypto'
import { GatewayError } from '../errors/index.ts'
import { bearerToken } from '../http/index.ts'

/** `admin` may do everything; `read` may read everything and simulate, but not change anything. */
export type AdminAccess = 'read' | 'admin'

export interface AdminCaller {
  access: AdminAccess
  /** How the caller proved it: which token. */
  via: 'token' | 'read_token'
}

export interface AdminAuth {
  readonly configured: boolean
  /** The caller; throws 401 unless the request carries an admin credential. */
  check(authorization: string | undefined): AdminCaller
}

function digest(text: string): Buffer {
  return createHash('sha256').update(text).digest()
}

export function adminAuth(token: string | undefined, readToken?: string): AdminAuth {
  const expected = token === undefined ? undefined : digest(token)
  const reader = readToken === undefined ? undefined : digest(readToken)
  return {
    configured: expected !== undefined || reader !== undefined,
    check(authorization) {
      if (!expected && !reader) {
        throw new GatewayError('unauthorized', {
          detail: 'The admin API is disabled: configure admin.token to use it.',
          headers: { 'www-authenticate': 'Bearer realm="bouncer-admin"' },
        })
      }
      if (authorization === undefined) {
        throw new GatewayError('missing_token', { detail: 'The admin API needs a bearer token.', headers: { 'www-authenticate': 'Bearer realm="bouncer-admin"' } })
      }
      const token = bearerToken(authorization)
      const presented = typeof token === 'string' ? digest(token) : undefined
      // Both compared every time, so the answer's timing does not say which one matched.
      const isAdmin = presented !== undefined && expected !== undefined && timingSafeEqual(presented, expected)
      const isReader = presented !== undefined && reader !== undefined && timingSafeEqual(presented, reader)
      if (isAdmin) return { access: 'admin', via: 'token' }
      if (isReader) return { access: 'read', via: 'read_token' }
      throw new GatewayError('unauthorized', {
        detail: 'The admin token is not valid.',
        headers: { 'www-authenticate': 'Bearer realm="bouncer-admin", error="invalid_token"' },
      })
    },
  }
}
