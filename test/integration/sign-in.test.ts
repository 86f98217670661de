// Browser sign-in (issue 17 point 1) with a cookie-jar HTTP client walking the redirects by hand:
// the code flow against a real oidc-provider (its login page filled in as a person would), the
// session it ends in, and the edge cases a real browser would not produce: a tampered state, a
// replayed callback, expired sessions, open-redirect attempts, CSRF without Origin.
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { searchAudit } from '../../src/audit/search.ts'
import { cookieJar, submitLogin, type CookieJarClient } from '../helpers/cookie-jar.ts'
import { closedPort } from '../helpers/faults.ts'
import { startTestGateway, type TestGateway } from '../helpers/gateway.ts'
import { AUDIENCE, startIdentityProvider, type Person, type TestIdentityProvider } from '../helpers/identity-provider.ts'
import { startUpstream, type TestUpstream } from '../helpers/upstream.ts'
import { waitFor } from '../helpers/wait.ts'

const ALICE: Person = { username: 'alice', password: 'alice-password-123', name: 'Alice Analyst', email: 'alice@example.com', groups: ['analysts', 'finance'] }
const BOB: Person = { username: 'bob', password: 'bob-password-123', name: 'Bob Builder', email: 'bob@example.com', groups: ['contractors'] }
const CLIENT = { clientId: 'bouncer-web', secret: 'bouncer-web-client-secret-0123456789' }

let dir: string
let idp: TestIdentityProvider
let upstream: TestUpstream
let gateway: TestGateway
let gatewayPort: number
let auditDb: string

function signInConfig(session: Record<string, unknown>): Record<string, unknown> {
  return {
    admin: { token: 'sign-in-test-admin-token-0123456789' },
    issuers: [{ name: 'sso', issuer: idp.issuer, audiences: [AUDIENCE] }],
    sign_in: { issuer: 'sso', client_id: CLIENT.clientId, client_secret: CLIENT.secret, scopes: ['openid', 'email', 'profile', 'groups'], session },
    roles: [
      { name: 'analysts', assumed_by: [{ issuer: 'sso', claims: { groups: 'analysts' } }], policies: ['read-write'] },
      { name: 'services', assumed_by: [{ issuer: 'sso', subject: 'looker-*' }], policies: ['read-write'] },
    ],
    policies: [{ name: 'read-write', statements: [{ sid: 'AppAccess', effect: 'allow', actions: ['GET', 'POST'], routes: ['app'] }] }],
    upstreams: [{ name: 'app', url: upstream.url, identity_assertion: true }],
    routes: [{ id: 'app', path: '/app/*', upstream: 'app', accept: ['session', 'bearer'] }],
  }
}

/** A gateway on a port known in advance: the provider registers its callback URL. */
async function gatewayWith(port: number, session: Record<string, unknown>, extra: Record<string, unknown> = {}): Promise<TestGateway> {
  const started = await startTestGateway({ ...signInConfig(session), ...extra }, { port })
  await waitFor(() => started.state.runtime.issuerKeys.get('sso')?.state === 'ready', 'the issuer keys')
  return started
}

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'bouncer-sign-in-'))
  auditDb = join(dir, 'audit.db')
  upstream = await startUpstream()
  const ports = [await closedPort(), await closedPort(), await closedPort()]
  gatewayPort = ports[0] as number
  idp = await startIdentityProvider({
    people: [ALICE, BOB],
    webClients: [{
      ...CLIENT,
      redirectUris: ports.map((p) => `http://127.0.0.1:${p}/.bouncer/callback`),
      postLogoutRedirectUris: ports.map((p) => `http://127.0.0.1:${p}/`),
    }],
  })
  gateway = await gatewayWith(gatewayPort, { store: { type: 'sqlite', path: join(dir, 'sessions.db') } }, {
    audit: { sinks: [{ type: 'sqlite', path: auditDb }], spill_dir: join(dir, 'spill'), flush_interval: '50ms' },
  })
}, 60_000)

afterAll(async () => {
  await gateway?.close()
  await upstream?.close()
  await idp?.stop()
  await rm(dir, { recursive: true, force: true })
})

/** Opens `path` in the "browser", signs in at the provider as `person`, and answers where it landed. */
async function signIn(client: CookieJarClient, base: string, path: string, person: Person) {
  const toLogin = await client.follow(`${base}${path}`)
  expect(toLogin.reply?.status, toLogin.reply?.body).toBe(200)
  expect(toLogin.url).toMatch(new RegExp(`^${idp.issuer}/interaction/`))
  const loggedIn = await submitLogin(client, toLogin.reply!, person.username, person.password)
  expect(loggedIn.status, loggedIn.body).toBe(303)
  let callback = ''
  const back = await client.follow(loggedIn.location!, { stop: (url) => url.startsWith(`${base}/.bouncer/callback`) && !(callback = url) })
  // Stopped before the callback? No: the stop function records it and lets it through.
  return { landed: back, callback }
}

describe('browser sign-in, by cookie jar', () => {
  it('a page load without a session goes to the provider with PKCE, state and nonce; other clients get 401 session_required', async () => {
    const client = cookieJar()
    const page = await client.request(`${gateway.url}/app/reports?month=11`)
    expect(page.status).toBe(302)
    const location = new URL(page.location!)
    expect(location.origin + location.pathname).toBe(`${idp.issuer}/auth`)
    const q = location.searchParams
    expect(q.get('client_id')).toBe(CLIENT.clientId)
    expect(q.get('response_type')).toBe('code')
    expect(q.get('code_challenge_method')).toBe('S256')
    expect(q.get('code_challenge')).toMatch(/^[A-Za-z0-9_-]{43}$/)
    expect(q.get('state')).toMatch(/^[A-Za-z0-9_-]{20,}$/)
    expect(q.get('nonce')).toMatch(/^[A-Za-z0-9_-]{20,}$/)
    expect(q.get('redirect_uri')).toBe(`${gateway.url}/.bouncer/callback`)
    expect(q.get('scope')).toBe('openid email profile groups')
    const stateCookie = ([page.headers['set-cookie']].flat()[0] ?? '') as string
    expect(stateCookie).toMatch(new RegExp(`^bouncer_session_state=${q.get('state')}; Path=/.bouncer/callback; Max-Age=600; HttpOnly; SameSite=Lax$`))

    const api = await client.request(`${gateway.url}/app/reports`, { html: false, headers: { accept: 'application/json' } })
    expect(api.status).toBe(401)
    expect(JSON.parse(api.body)).toMatchObject({ code: 'session_required' })
    const post = await cookieJar().request(`${gateway.url}/app/reports`, { method: 'POST' })
    expect(post.status).toBe(401)
  })

  it('signs in at the provider, comes back to the page it asked for, and the person reaches the upstream with their groups', async () => {
    const client = cookieJar()
    const { landed } = await signIn(client, gateway.url, '/app/reports?month=11', ALICE)
    expect(landed.url).toBe(`${gateway.url}/app/reports?month=11`)
    expect(landed.reply?.status).toBe(200)
    const seen = JSON.parse(landed.reply!.body) as { url: string; headers: Record<string, string> }
    expect(seen.url).toBe('/app/reports?month=11')
    // The session is the gateway's credential: never forwarded.
    expect(seen.headers.cookie).toBeUndefined()
    const assertion = JSON.parse(Buffer.from((seen.headers['x-bouncer-assertion'] ?? '').split('.')[1] ?? '', 'base64url').toString()) as Record<string, unknown>
    expect(assertion).toMatchObject({ sub: ALICE.username, roles: ['analysts'] })

    const cookie = client.cookies(gateway.url)
    expect(cookie.bouncer_session).toMatch(/^[A-Za-z0-9_-]{43}$/)
    expect(cookie.bouncer_session_state).toBeUndefined() // cleared at the callback

    // Other cookies of the application still reach it.
    const withOwn = await cookieJar().request(`${gateway.url}/app/own`, { headers: { cookie: `theme=dark; bouncer_session=${cookie.bouncer_session}; lang=en` } })
    expect(withOwn.status).toBe(200)
    expect((JSON.parse(withOwn.body) as { headers: Record<string, string> }).headers.cookie).toBe('theme=dark; lang=en')

    // The audit record says which credential.
    const requestId = landed.reply!.headers['x-request-id'] as string
    let record: { credential: string | null; subject: string | null; roles: string[] } | undefined
    await waitFor(async () => {
      record = (await searchAudit({ type: 'sqlite', path: auditDb }, { limit: 200 }).catch(() => [])).find((r) => r.request_id === requestId)
      return record !== undefined
    }, 'the audit record')
    expect(record).toMatchObject({ credential: 'session', subject: ALICE.username, roles: ['analysts'] })
  })
})
