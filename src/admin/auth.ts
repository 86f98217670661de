// Admin API access: a static bearer token (admin.token) for every action, and optionally a second
// one (admin.read_token) that reads but changes nothing (no reload, no verify, no revoke), compared
// in constant time. Hashing both sides first makes the comparison independent of the token's
// length as well as its content. Browser sign-in (SPEC `sign_in` with `admin.roles`) is another way
// to the same AdminCaller (sessionCaller): the API and the console only ever see the caller.
import { createHash, timingSafeEqual } from 'node:crypto'
import type { AdminConfig } from '../config/index.ts'
import { GatewayError } from '../errors/index.ts'
import type { Runtime } from '../gateway/index.ts'
import { bearerToken } from '../http/index.ts'
import { UnprovenRefusal, type SignIn } from '../identity/index.ts'
import type { Identity } from '../request/index.ts'
import type { AdminAccess, AdminVia } from './console-shapes.ts'

export interface AdminCaller {
  access: AdminAccess
  /** How the caller proved it: which token, or a console sign-in. */
  via: AdminVia
  /** Who signed in (`issuer/subject`), the role that gave the access, and the identity itself: sign-in only. */
  principal?: string
  role?: string
  identity?: Identity
}

/** People signing in to the console (admin.roles): the sign-in, and what a signed-in identity may do. */
export interface ConsoleSignIn {
  signIn: SignIn
  /** The caller a signed-in person is, by their roles; throws 403 no_role. */
  callerOf(identity: Identity): AdminCaller
}

/** The console's sign-in under a runtime's config: null without sign_in or admin roles. */
export function consoleSignInOf(runtime: Pick<Runtime, 'consoleSignIn' | 'access' | 'config'>): ConsoleSignIn | null {
  const signIn = runtime.consoleSignIn
  if (signIn === null) return null
  return { signIn, callerOf: (identity) => sessionCaller(identity, runtime.access.resolver.rolesFor(identity), runtime.config.admin) }
}

/**
 * A person signed in to the console: admin access by a role of admin.roles, read-only by one of
 * admin.read_roles; anyone else is refused (403 no_role), with the roles they do have.
 */
export function sessionCaller(identity: Identity, roles: readonly string[], admin: Pick<AdminConfig, 'roles' | 'read_roles'>): AdminCaller {
  const principal = `${identity.issuerName}/${identity.sub}`
  const adminRole = roles.find((role) => admin.roles.includes(role))
  if (adminRole !== undefined) return { access: 'admin', via: 'sign_in', principal, role: adminRole, identity }
  const readRole = roles.find((role) => admin.read_roles.includes(role))
  if (readRole !== undefined) return { access: 'read', via: 'sign_in', principal, role: readRole, identity }
  const held = roles.length === 0 ? 'no role' : `the roles ${roles.join(', ')}`
  const wanted = [...admin.roles, ...admin.read_roles].join(', ')
  throw new GatewayError('no_role', { detail: `Signed in as ${principal} with ${held}: the console needs one of ${wanted} (admin.roles, admin.read_roles).` })
}

export interface AdminAuth {
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
      // A guess at the admin API: auth_failures counts it against its address as it counts a forged
      // token at the gateway (unlike a missing token or a disabled API).
      throw new UnprovenRefusal('unauthorized', {
        detail: 'The admin token is not valid.',
        headers: { 'www-authenticate': 'Bearer realm="bouncer-admin", error="invalid_token"' },
      })
    },
  }
}
