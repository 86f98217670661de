// A person's sign-in through a real provider, as the sign-in tests set it up: the gateway's web
// client registered at the provider for the gateway's origin (known before the gateway listens,
// so on a held port), the `issuers` and `sign_in` blocks naming that provider and client, and a
// gateway started there once its issuer's keys are loaded. A test file says only what is its own.
import { randomBytes } from 'node:crypto'
import { sessionId } from '../../src/identity/index.ts'
import type { heldPort } from './faults.ts'
import { startTestGateway, type TestGateway } from './gateway.ts'
import { AUDIENCE, startIdentityProvider, type Person, type ProviderOptions, type TestIdentityProvider, type WebClient } from './identity-provider.ts'
import { waitFor } from './wait.ts'

/** The gateway's client at the provider (sign_in.client_id and client_secret). */
export const WEB_CLIENT = { clientId: 'bouncer-web', secret: 'bouncer-web-client-secret-0123456789' } as const

/** Where the provider sends a person back to the gateway (the registered redirect URI's path). */
const CALLBACK_PATH = '/.bouncer/callback'

/** The default scopes and `groups`, the claim the tests' roles are assumed by. */
export const SCOPES_WITH_GROUPS = ['openid', 'email', 'profile', 'groups']

/** An origin registered at the provider that no gateway listens on: for files that write sessions to the store and never come back from the provider. */
export const UNUSED_ORIGIN = 'http://127.0.0.1:9'

export type HeldPort = Awaited<ReturnType<typeof heldPort>>

/** A gateway's origin: a port means http://127.0.0.1:port. */
export type Origin = number | string

const originOf = (at: Origin) => (typeof at === 'number' ? `http://127.0.0.1:${at}` : at)

/**
 * The web client as registered for gateways at `origins`: their callback URLs, and, with
 * `afterSignOut` (a path), where the provider may send a person after signing out (none otherwise).
 */
function webClient(origins: Origin | Origin[], afterSignOut?: string): WebClient {
  const all = [origins].flat().map(originOf)
  return {
    ...WEB_CLIENT,
    redirectUris: all.map((origin) => `${origin}${CALLBACK_PATH}`),
    postLogoutRedirectUris: afterSignOut === undefined ? [] : all.map((origin) => `${origin}${afterSignOut}`),
  }
}

/** A provider with the web client registered for gateways at `origins` (and `options`' people, token lifetimes…). */
export function startSignInProvider(origins: Origin | Origin[], options: ProviderOptions & { afterSignOut?: string } = {}): Promise<TestIdentityProvider> {
  const { afterSignOut, ...provider } = options
  return startIdentityProvider({ ...provider, webClients: [webClient(origins, afterSignOut)] })
}

/** The gateway config's `issuers` (the provider, as 'sso') and `sign_in` (through it, as the web client, with `signIn`'s scopes, session, cookie…). */
export function signInConfig(idp: TestIdentityProvider, signIn: Record<string, unknown> = {}): { issuers: object[]; sign_in: Record<string, unknown> } {
  return {
    issuers: [{ name: 'sso', issuer: idp.issuer, audiences: [AUDIENCE] }],
    sign_in: { issuer: 'sso', client_id: WEB_CLIENT.clientId, client_secret: WEB_CLIENT.secret, ...signIn },
  }
}

/**
 * startTestGateway, ready for sign-ins: on `port` and `adminPort` if given (a held port is let go
 * just before the gateway listens there), answering once it has loaded the issuer's keys (an ID
 * token can be verified).
 */
export async function startSignInGateway(
  config: Parameters<typeof startTestGateway>[0],
  options: { port?: HeldPort | number; adminPort?: HeldPort | number } = {},
): Promise<TestGateway> {
  const port = await released(options.port)
  const adminPort = await released(options.adminPort)
  const gateway = await startTestGateway(config, { port, adminPort })
  await waitFor(() => gateway.state.runtime.issuerKeys.get('sso')?.state === 'ready', 'the issuer keys')
  return gateway
}

async function released(port: HeldPort | number | undefined): Promise<number | undefined> {
  if (port === undefined || typeof port === 'number') return port
  await port.release()
  return port.port
}

/** People in the provider's `analysts` group may GET every route: the role and policy the sign-in tests give their gateways. */
export function analystsMayGet(): { roles: object[]; policies: object[] } {
  return {
    roles: [{ name: 'analysts', assumed_by: [{ issuer: 'sso', claims: { groups: 'analysts' } }], policies: ['apps'] }],
    policies: [{ name: 'apps', statements: [{ sid: 'Apps', effect: 'allow', actions: ['GET'], routes: ['*'] }] }],
  }
}

/** A person of the provider's `analysts` group: the sign-in tests' one user. */
export const ALICE: Person = { username: 'alice', password: 'alice-password-123', name: 'Alice Analyst', email: 'alice@example.com', groups: ['analysts'] }
/** The console's sign-in client at the test provider, and the platform admin who signs in with it. */
export const CONSOLE_CLIENT = { clientId: 'bouncer-console', secret: 'bouncer-console-client-secret-0123' }
export const ALICE_ADMIN: Person = { username: 'alice', password: 'alice-password-123', name: 'Alice Admin', email: 'alice@example.com', groups: ['platform'] }

/** `/people/*` to `upstreamUrl` (upstream `app`), taking a signed-in session only. */
export function sessionRoute(upstreamUrl: string): { upstreams: object[]; routes: object[] } {
  return { upstreams: [{ name: 'app', url: upstreamUrl }], routes: [{ id: 'people', path: '/people/*', upstream: 'app', accept: ['session'] }] }
}

/**
 * A session of `subject` (groups: staff) put in the running config's sign-in store as the callback
 * writes it, last used `idleFor` ms ago, for an hour more; its cookie.
 */
export async function storedSession(gateway: TestGateway, subject: string, idleFor = 0): Promise<string> {
  const value = randomBytes(32).toString('base64url')
  const now = Date.now()
  await gateway.state.runtime.signIn!.store.put({
    id: sessionId(value), issuer: 'sso', subject, claims: { sub: subject, groups: ['staff'] },
    createdAt: now - idleFor, lastSeenAt: now - idleFor, expiresAt: now + 3_600_000, refreshAt: null, sealed: null, audience: 'gateway',
  })
  return `bouncer_session=${value}`
}
