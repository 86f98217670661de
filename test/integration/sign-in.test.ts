// Browser sign-in (issue 17 point 1) with a cookie-jar HTTP client walking the redirects by hand:
// the code flow against a real oidc-provider (its login page filled in as a person would), the
// session it ends in, and the edge cases a real browser would not produce: a tampered state, a
// replayed callback, expired sessions, open-redirect attempts, CSRF without Origin.
import { once } from 'node:events'
import { mkdtemp, rm } from 'node:fs/promises'
import { createServer } from 'node:http'
import { DatabaseSync } from 'node:sqlite'
import { hostname, tmpdir, userInfo } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { request } from 'undici'
import { searchAudit } from '../../src/audit/search.ts'
import { revokeGrantsOf } from '../../src/demo/identity-provider.ts'
import { sessionId } from '../../src/identity/index.ts'
import { runCliInProcess } from '../helpers/cli-in-process.ts'
import { uniquePrefix } from '../helpers/redis.ts'
import { cookieJar, submitLogin, type CookieJarClient } from '../helpers/cookie-jar.ts'
import { heldPort } from '../helpers/faults.ts'
import type { TestGateway } from '../helpers/gateway.ts'
import type { Person, TestIdentityProvider } from '../helpers/identity-provider.ts'
import { SCOPES_WITH_GROUPS, signInConfig, startSignInGateway, startSignInProvider, WEB_CLIENT, type HeldPort } from '../helpers/sign-in.ts'
import { startUpstream, type TestUpstream } from '../helpers/upstream.ts'
import { waitFor } from '../helpers/wait.ts'

const ALICE: Person = { username: 'alice', password: 'alice-password-123', name: 'Alice Analyst', email: 'alice@example.com', groups: ['analysts', 'finance'] }
const BOB: Person = { username: 'bob', password: 'bob-password-123', name: 'Bob Builder', email: 'bob@example.com', groups: ['contractors'] }
const FUNCTIONS = fileURLToPath(new URL('../fixtures/functions/', import.meta.url))
const ADMIN = { authorization: 'Bearer sign-in-test-admin-token-0123456789' }

let dir: string
let idp: TestIdentityProvider
let upstream: TestUpstream
let gateway: TestGateway
let held: HeldPort[]
let auditDb: string

function gatewayConfig(session: Record<string, unknown>): Record<string, unknown> {
  return {
    server: { trusted_proxies: ['127.0.0.1/32'], forward_auth_peers: ['127.0.0.1/32'] },
    admin: { token: 'sign-in-test-admin-token-0123456789' },
    ...signInConfig(idp, { scopes: SCOPES_WITH_GROUPS, session }),
    roles: [
      { name: 'analysts', assumed_by: [{ issuer: 'sso', claims: { groups: 'analysts' } }], policies: ['read-write'] },
      { name: 'services', assumed_by: [{ issuer: 'sso', subject: 'looker-*' }], policies: ['read-write'] },
    ],
    policies: [{ name: 'read-write', statements: [{ sid: 'AppAccess', effect: 'allow', actions: ['GET', 'POST'], routes: ['app', 'fn'] }] }],
    upstreams: [{ name: 'app', url: upstream.url, identity_assertion: true }],
    functions: [{ name: 'echo', module: join(FUNCTIONS, 'echo.ts'), concurrency: 1 }],
    routes: [
      { id: 'app', path: '/app/*', upstream: 'app', accept: ['session', 'bearer'] },
      { id: 'fn', path: '/fn', function: 'echo', accept: ['session'] },
    ],
  }
}

/** A gateway on a port known in advance (held until now, so no other test's listener took it): the provider registers its callback URL. */
function gatewayWith(port: HeldPort, session: Record<string, unknown>, extra: Record<string, unknown> = {}): Promise<TestGateway> {
  return startSignInGateway({ ...gatewayConfig(session), ...extra }, { port })
}

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'bouncer-sign-in-'))
  auditDb = join(dir, 'audit.db')
  upstream = await startUpstream()
  held = [await heldPort(), await heldPort(), await heldPort(), await heldPort()]
  idp = await startSignInProvider(held.map((h) => h.port), { people: [ALICE, BOB], idTokenTtlSeconds: 3, afterSignOut: '/' })
  gateway = await gatewayWith(held[0] as HeldPort, { store: { type: 'sqlite', path: join(dir, 'sessions.db') } }, {
    audit: { sinks: [{ type: 'sqlite', path: auditDb }], spill_dir: join(dir, 'spill'), flush_interval: '50ms' },
  })
}, 60_000)

afterAll(async () => {
  await gateway?.close()
  await Promise.all((held ?? []).map((h) => h.release()))
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
  // The stop function only notes the callback URL (for replays) and lets it through.
  const back = await client.follow(loggedIn.location!, { stop: (url) => url.startsWith(`${base}/.bouncer/callback`) && !(callback = url) })
  return { landed: back, callback }
}

/** Signs in up to the provider's redirect back, without following it: the callback URL and the browser that holds its state. */
async function callbackOf(base: string, person: Person): Promise<{ client: CookieJarClient; callback: string }> {
  const client = cookieJar()
  const toLogin = await client.follow(`${base}/app/start`)
  const loggedIn = await submitLogin(client, toLogin.reply!, person.username, person.password)
  const stopped = await client.follow(loggedIn.location!, { stop: (url) => url.startsWith(`${base}/.bouncer/callback`) })
  expect(stopped.reply).toBeNull()
  return { client, callback: stopped.url }
}

function problem(reply: { body: string }): { code: string; detail: string } {
  return JSON.parse(reply.body) as { code: string; detail: string }
}

async function sessionIdOf(client: CookieJarClient, base: string): Promise<string> {
  const listed = await request(`${gateway.adminUrl}/api/sessions`, { headers: ADMIN })
  const sessions = (await listed.body.json()) as { id: string; subject: string; created_at: string }[]
  const { createHash } = await import('node:crypto')
  const id = createHash('sha256').update(client.cookies(base).bouncer_session ?? '').digest('hex').slice(0, 32)
  expect(sessions.map((s) => s.id)).toContain(id)
  return id
}

describe('browser sign-in, by cookie jar', { timeout: 90_000 }, () => {
  it('a page load without a session goes to the provider with PKCE, state and nonce; other clients get 401 session_required', async () => {
    const client = cookieJar()
    const page = await client.request(`${gateway.url}/app/reports?month=11`)
    expect(page.status).toBe(302)
    const location = new URL(page.location!)
    expect(location.origin + location.pathname).toBe(`${idp.issuer}/auth`)
    const q = location.searchParams
    expect(q.get('client_id')).toBe(WEB_CLIENT.clientId)
    expect(q.get('response_type')).toBe('code')
    expect(q.get('code_challenge_method')).toBe('S256')
    expect(q.get('code_challenge')).toMatch(/^[A-Za-z0-9_-]{43}$/)
    expect(q.get('state')).toMatch(/^[A-Za-z0-9_-]{20,}$/)
    expect(q.get('nonce')).toMatch(/^[A-Za-z0-9_-]{20,}$/)
    expect(q.get('redirect_uri')).toBe(`${gateway.url}/.bouncer/callback`)
    expect(q.get('scope')).toBe('openid email profile groups')
    const stateCookie = ([page.headers['set-cookie']].flat()[0] ?? '') as string
    // The sign-in under way (state, nonce, PKCE verifier, the page), sealed: nothing of it is stored server-side.
    expect(stateCookie).toMatch(/^bouncer_session_state=[A-Za-z0-9_-]{200,}; Path=\/\.bouncer\/callback; Max-Age=600; HttpOnly; SameSite=Lax$/)
    expect(stateCookie).not.toContain(q.get('state'))

    // Behind a TLS-terminating proxy (a trusted peer): the redirect URI is https, the cookie Secure.
    const proxied = await cookieJar().request(`${gateway.url}/app/reports`, { headers: { 'x-forwarded-proto': 'https', 'x-forwarded-host': 'gateway.example.com' } })
    expect(new URL(proxied.location!).searchParams.get('redirect_uri')).toBe('https://gateway.example.com/.bouncer/callback')
    expect([proxied.headers['set-cookie']].flat()[0]).toMatch(/; HttpOnly; SameSite=Lax; Secure$/)

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

    // Nor does a function see it in its event's cookies.
    const fn = await cookieJar().request(`${gateway.url}/fn`, { html: false, headers: { cookie: `theme=dark; bouncer_session=${cookie.bouncer_session}` } })
    expect(fn.status).toBe(200)
    expect((JSON.parse(fn.body) as { event: { cookies: string[] } }).event.cookies).toEqual(['theme=dark'])

    // A reload keeps the sessions.
    expect((await request(`${gateway.adminUrl}/api/reload`, { method: 'POST', headers: ADMIN })).statusCode).toBe(200)
    expect((await client.request(`${gateway.url}/app/reports`)).status).toBe(200)

    // The audit record says which credential.
    const requestId = landed.reply!.headers['x-request-id'] as string
    let record: { credential: string | null; subject: string | null; roles: string[] } | undefined
    await waitFor(async () => {
      record = (await searchAudit({ type: 'sqlite', path: auditDb }, { limit: 200 }).catch(() => [])).find((r) => r.request_id === requestId)
      return record !== undefined
    }, 'the audit record')
    expect(record).toMatchObject({ credential: 'session', subject: ALICE.username, roles: ['analysts'] })
  })

  it('a tampered state is refused, and so is the right state in a browser that did not begin the sign-in (login CSRF)', async () => {
    const { client, callback } = await callbackOf(gateway.url, ALICE)
    const tampered = new URL(callback)
    tampered.searchParams.set('state', `${tampered.searchParams.get('state')}x`)
    const refused = await client.request(tampered.href)
    expect(refused.status).toBe(400)
    expect(problem(refused)).toMatchObject({ code: 'bad_request', detail: expect.stringContaining('state does not match') })
    expect(client.cookies(gateway.url).bouncer_session).toBeUndefined()

    // An attacker's own callback URL, opened in the victim's browser: no state cookie there.
    const victim = cookieJar()
    const forced = await victim.request(callback)
    expect(forced.status).toBe(400)
    expect(victim.cookies(gateway.url).bouncer_session).toBeUndefined()

    // The browser that began it still completes it.
    const done = await client.request(callback)
    expect(done.status).toBe(302)
    expect(done.location).toBe(`${gateway.url}/app/start`)
  })

  it('a replayed callback (the same code and state again) is refused, and makes no second session', async () => {
    const { client, callback } = await callbackOf(gateway.url, ALICE)
    const stateCookie = client.cookies(gateway.url).bouncer_session_state as string
    const first = await client.request(callback)
    expect(first.status).toBe(302)
    // The browser's own replay (Back to the callback): its state cookie was cleared, so the code stays here.
    const tokenRequests = idp.tokenRequests
    const again = await client.request(callback)
    expect(again.status).toBe(400)
    expect(problem(again)).toMatchObject({ code: 'bad_request', detail: expect.stringContaining('state does not match') })
    expect(idp.tokenRequests).toBe(tokenRequests)
    const sessions = (await (await request(`${gateway.adminUrl}/api/sessions`, { headers: ADMIN })).body.json()) as unknown[]
    // Even with the state cookie copied: the sign-in under way is in the cookie, not kept here, so
    // the code goes back to the provider, which refuses a used one (RFC 6749 §4.1.2).
    const thief = cookieJar()
    thief.setCookie(gateway.url, 'bouncer_session_state', stateCookie)
    const replayed = await thief.request(callback)
    expect(replayed.status).toBe(400)
    expect(problem(replayed)).toMatchObject({ code: 'bad_request', detail: expect.stringContaining('already used') })
    expect(thief.cookies(gateway.url).bouncer_session).toBeUndefined()
    expect((await (await request(`${gateway.adminUrl}/api/sessions`, { headers: ADMIN })).body.json()) as unknown[]).toHaveLength(sessions.length)
  })

  it('never redirects off the gateway: return_to must be a path here, and the page asked for is where the browser lands', async () => {
    const client = cookieJar()
    for (const target of ['https://evil.example/', '//evil.example/x', '/\\evil.example', '/%2F%2Fevil.example', 'javascript:alert(1)', '/\t/evil.example']) {
      const reply = await client.request(`${gateway.url}/.bouncer/sign_in?return_to=${encodeURIComponent(target)}`)
      expect(reply.status, target).toBe(400)
      expect(problem(reply)).toMatchObject({ code: 'bad_request', detail: 'return_to must be a path on this gateway (starting with a single /).' })
    }
    // A protected page whose request target is a network path: the browser still comes back here.
    const sneaky = await client.request(`${gateway.url}//evil.example/app/x`)
    expect(sneaky.location === undefined || new URL(sneaky.location).origin === idp.issuer).toBe(true)
    // A good one: sign in from the link, land on the page.
    const start = await client.request(`${gateway.url}/.bouncer/sign_in?return_to=${encodeURIComponent('/app/after?x=1')}`)
    expect(start.status).toBe(302)
    expect(start.headers['cache-control']).toBe('no-store')
    const toLogin = await client.follow(start.location!)
    const loggedIn = await submitLogin(client, toLogin.reply!, ALICE.username, ALICE.password)
    const back = await client.follow(loggedIn.location!)
    expect(back.url).toBe(`${gateway.url}/app/after?x=1`)
    expect(back.reply?.status).toBe(200)
  })

  it('a state-changing request with the session cookie needs an Origin of this gateway (CSRF)', async () => {
    const client = cookieJar()
    await signIn(client, gateway.url, '/app/home', ALICE)
    const post = (headers: Record<string, string>) => client.request(`${gateway.url}/app/orders`, { method: 'POST', html: false, headers: { 'content-type': 'application/json', ...headers }, body: '{}' })
    const noOrigin = await post({})
    expect(noOrigin.status).toBe(403)
    expect(problem(noOrigin)).toMatchObject({ code: 'cors_origin_denied', detail: expect.stringContaining('needs an Origin header') })
    const otherSite = await post({ origin: 'https://evil.example' })
    expect(otherSite.status).toBe(403)
    expect(problem(otherSite).code).toBe('cors_origin_denied')
    const nullOrigin = await post({ origin: 'null' })
    expect(nullOrigin.status).toBe(403)
    const sameOrigin = await post({ origin: gateway.url })
    expect(sameOrigin.status).toBe(200)
    // A bearer token is no ambient credential: no Origin needed.
    const token = await idp.token('looker-reports')
    const machine = await cookieJar().request(`${gateway.url}/app/orders`, { method: 'POST', html: false, headers: { authorization: `Bearer ${token}` }, body: '{}' })
    expect(machine.status).toBe(200)
  })

  it('signing out ends the session here and at the provider (RP-initiated logout), and the next page load asks to sign in again', async () => {
    const client = cookieJar()
    await signIn(client, gateway.url, '/app/home', ALICE)
    const cookie = client.cookies(gateway.url).bouncer_session as string
    // The page's Sign out button posts, with the gateway's Origin (a GET only shows the button).
    const out = await client.request(`${gateway.url}/.bouncer/sign_out`, { method: 'POST', headers: { origin: gateway.url } })
    expect(out.status).toBe(302)
    const endSession = new URL(out.location!)
    expect(endSession.origin + endSession.pathname).toBe(`${idp.issuer}/session/end`)
    expect(endSession.searchParams.get('post_logout_redirect_uri')).toBe(`${gateway.url}/`)
    expect(endSession.searchParams.get('id_token_hint')).toMatch(/^ey/)
    expect(client.cookies(gateway.url).bouncer_session).toBeUndefined()
    // The old cookie, kept by someone, names nothing any more.
    const stale = await cookieJar().request(`${gateway.url}/app/home`, { html: false, headers: { cookie: `bouncer_session=${cookie}` } })
    expect(stale.status).toBe(401)
    expect(problem(stale).code).toBe('session_expired')
    const again = await client.request(`${gateway.url}/app/home`)
    expect(again.status).toBe(302)
    expect(again.location).toMatch(new RegExp(`^${idp.issuer}/auth\\?`))
    // A POST sign-out from another site is refused (it would sign people out at will).
    expect((await client.request(`${gateway.url}/.bouncer/sign_out`, { method: 'POST', headers: { origin: 'https://evil.example' } })).status).toBe(403)
  })

  it('refreshes the claims with the refresh token when the ID token expires, and keeps the session', async () => {
    const client = cookieJar()
    await signIn(client, gateway.url, '/app/home', ALICE)
    const before = idp.tokenRequests
    // The ID tokens live 3 s: after that, the next request refreshes them once.
    const signedInAt = Date.now()
    await waitFor(() => Date.now() > signedInAt + 3_500, 'the ID token to expire', 10_000)
    const [a, b] = await Promise.all([client.request(`${gateway.url}/app/one`), client.request(`${gateway.url}/app/two`)])
    expect([a.status, b.status]).toEqual([200, 200])
    expect(idp.tokenRequests).toBe(before + 1)
  })

  it('forward-auth (a proxy\'s sub-request) gets 401 session_required, never a redirect it could not pass on; with the cookie, 200', async () => {
    const ask = (headers: Record<string, string>) => cookieJar().request(`${gateway.url}/.bouncer/auth`, { headers: { 'x-original-method': 'GET', 'x-original-uri': '/app/page', ...headers } })
    const anonymous = await ask({})
    expect(anonymous.status).toBe(401)
    expect(problem(anonymous).code).toBe('session_required')
    const client = cookieJar()
    await signIn(client, gateway.url, '/app/home', ALICE)
    const allowed = await ask({ cookie: `bouncer_session=${client.cookies(gateway.url).bouncer_session}` })
    expect(allowed.status).toBe(200)
    expect(allowed.headers['x-bouncer-assertion']).toMatch(/^ey/)
  })

  it('when the provider refuses the refresh (the person was disabled there), the session ends', async () => {
    const client = cookieJar()
    await signIn(client, gateway.url, '/app/home', ALICE)
    const signedInAt = Date.now()
    expect(revokeGrantsOf('alice')).toBeGreaterThan(0)
    await waitFor(() => Date.now() > signedInAt + 3_500, 'the ID token to expire', 10_000)
    const refused = await client.request(`${gateway.url}/app/home`, { html: false })
    expect(refused.status).toBe(401)
    expect(problem(refused)).toMatchObject({ code: 'session_expired', detail: expect.stringContaining('refresh token was refused') })
    // Ended for good: the page load now asks to sign in.
    expect((await client.request(`${gateway.url}/app/home`)).status).toBe(302)
  })

  it('bouncer sessions lists and revokes; the admin API too; each is refused at the next request', async () => {
    const alice = cookieJar()
    const bob = cookieJar()
    await signIn(alice, gateway.url, '/app/home', ALICE)
    await signIn(bob, gateway.url, '/app/home', BOB) // bob holds no role: 403, but a session
    const aliceId = await sessionIdOf(alice, gateway.url)
    const listed = await runCliInProcess(['sessions', 'list', '--json', '--config', gateway.file])
    expect(listed.code, listed.stderr).toBe(0)
    const documents = listed.stdout.trim().split('\n').map((line) => JSON.parse(line) as Record<string, unknown>)
    expect(documents).toContainEqual(expect.objectContaining({ id: aliceId, subject: 'alice', audience: 'gateway', email: ALICE.email, name: ALICE.name }))
    expect(listed.stdout).not.toContain(alice.cookies(gateway.url).bouncer_session)
    const table = await runCliInProcess(['sessions', 'list', '--config', gateway.file])
    expect(table.stdout).toMatch(/^ID\s+FOR\s+SUBJECT\s+EMAIL/)
    expect(table.stdout).toMatch(new RegExp(`^${aliceId}\\s+gateway\\s+alice\\s`, 'm'))

    const revoked = await runCliInProcess(['sessions', 'revoke', aliceId, '--config', gateway.file, '--reason', 'offboarding'])
    expect(revoked).toMatchObject({ code: 0, stdout: `ended session ${aliceId}\n` })
    // Audited, in the command line's chain of the gateway's own log, naming who ran it.
    const [cliRecord] = await searchAudit({ type: 'sqlite', path: auditDb }, { limit: 1, principal: userInfo().username })
    expect(cliRecord).toMatchObject({ method: 'CLI', path: `bouncer sessions revoke ${aliceId}`, instance: `cli:${hostname()}`, detail: `Ended session ${aliceId}. Reason: offboarding` })
    const after = await alice.request(`${gateway.url}/app/home`, { html: false })
    expect(after.status).toBe(401)
    expect(problem(after).code).toBe('session_expired')
    expect((await runCliInProcess(['sessions', 'revoke', aliceId, '--config', gateway.file]))).toMatchObject({ code: 1, stderr: `bouncer: no session ${aliceId}\n` })
    expect((await runCliInProcess(['sessions', 'revoke', 'nope', '--config', gateway.file])).code).toBe(2)

    const bobId = await sessionIdOf(bob, gateway.url)
    const deleted = await request(`${gateway.adminUrl}/api/sessions/${bobId}`, { method: 'DELETE', headers: ADMIN })
    expect(deleted.statusCode).toBe(200)
    expect(await deleted.body.json()).toMatchObject({ id: bobId, subject: 'bob' })
    expect(problem(await bob.request(`${gateway.url}/app/home`, { html: false })).code).toBe('session_expired')
  })

  it('a session that sat idle, or reached its lifetime, has expired: 401 session_expired, and a page load signs in again', async () => {
    const short = await gatewayWith(held[1] as HeldPort, { ttl: '6s', idle: '2s', store: 'memory' })
    // The three sessions run side by side (each its own browser): the idle one, the polled one and
    // the busy one each wait out their own clock, and the test waits for the longest (the lifetime).
    const idleOne = async () => {
      const idle = cookieJar()
      await signIn(idle, short.url, '/app/home', ALICE)
      expect((await idle.request(`${short.url}/app/home`)).status).toBe(200)
      const lastUse = Date.now()
      await waitFor(() => Date.now() > lastUse + 2_200, 'the idle timeout to pass', 10_000)
      const idled = await idle.request(`${short.url}/app/home`, { html: false })
      expect(idled.status).toBe(401)
      expect(problem(idled)).toMatchObject({ code: 'session_expired', detail: expect.stringContaining('idle for more than 2s') })
    }

    // A page's automatic refresh (X-Bouncer-Background: 1, the console's live overview) is not
    // use: polled every 300 ms, the session still goes idle (a probe's open tab stayed signed in).
    const polledOne = async () => {
      const polled = cookieJar()
      await signIn(polled, short.url, '/app/home', ALICE)
      const polledFrom = Date.now()
      let poll = await polled.request(`${short.url}/app/home`, { html: false, headers: { 'x-bouncer-background': '1' } })
      while (poll.status === 200 && Date.now() < polledFrom + 5_000) {
        await new Promise((r) => setTimeout(r, 300))
        poll = await polled.request(`${short.url}/app/home`, { html: false, headers: { 'x-bouncer-background': '1' } })
      }
      expect(problem(poll)).toMatchObject({ code: 'session_expired', detail: expect.stringContaining('idle for more than 2s') })
    }

    const busyOne = async () => {
      const busy = cookieJar()
      const signedIn = Date.now()
      await signIn(busy, short.url, '/app/home', ALICE)
      // Used every few hundred milliseconds: never idle, but it ends at ttl all the same.
      let last = await busy.request(`${short.url}/app/home`, { html: false })
      while (last.status === 200 && Date.now() < signedIn + 20_000) {
        await new Promise((r) => setTimeout(r, 300))
        last = await busy.request(`${short.url}/app/home`, { html: false })
      }
      expect(Date.now() - signedIn).toBeGreaterThanOrEqual(5_500)
      expect(problem(last)).toMatchObject({ code: 'session_expired', detail: expect.stringContaining('6s lifetime') })
      // A page load is sent to sign in again.
      const page = await busy.request(`${short.url}/app/home`)
      expect(page.status).toBe(302)
      expect(page.location).toMatch(new RegExp(`^${idp.issuer}/auth`))
    }

    try {
      await Promise.all([idleOne(), polledOne(), busyOne()])
    } finally {
      await short.close()
    }
  })

  it('sessions in Redis are shared: signed in at one gateway, seen by another, and a revocation at either is effective at once', async () => {
    const store = { type: 'redis', url: 'redis://127.0.0.1:6379', prefix: uniquePrefix('sign-in') }
    const one = await gatewayWith(held[2] as HeldPort, { store })
    const two = await gatewayWith(held[3] as HeldPort, { store })
    try {
      const client = cookieJar()
      const { landed } = await signIn(client, one.url, '/app/home', ALICE)
      expect(landed.reply?.status).toBe(200)
      const cookie = `bouncer_session=${client.cookies(one.url).bouncer_session}`
      const onTwo = await cookieJar().request(`${two.url}/app/home`, { html: false, headers: { cookie } })
      expect(onTwo.status).toBe(200)
      const listed = (await (await request(`${two.adminUrl}/api/sessions`, { headers: ADMIN })).body.json()) as { id: string }[]
      expect(listed).toHaveLength(1)
      const revoked = await request(`${two.adminUrl}/api/sessions/${listed[0]!.id}`, { method: 'DELETE', headers: ADMIN })
      expect(revoked.statusCode).toBe(200)
      // No cache to wait out: the very next request on the other gateway is refused.
      const onOne = await cookieJar().request(`${one.url}/app/home`, { html: false, headers: { cookie } })
      expect(onOne.status).toBe(401)
      expect(problem(onOne).code).toBe('session_expired')

      // A sign-in begun at one instance completes at the other (as a load balancer may send it):
      // the sign-in under way is in the state cookie, sealed with the key both read from Redis.
      // Host says the name the browser used: one's.
      const { client: other, callback } = await callbackOf(one.url, ALICE)
      const state = other.cookies(one.url).bouncer_session_state as string
      const atTwo = await request(`${two.url}/.bouncer/callback${new URL(callback).search}`, { headers: { host: new URL(one.url).host, cookie: `bouncer_session_state=${state}` } })
      expect(atTwo.statusCode).toBe(302)
      expect(atTwo.headers.location).toBe('/app/start')
      expect(String(atTwo.headers['set-cookie'])).toMatch(/^bouncer_session=[A-Za-z0-9_-]{43};/)
      await atTwo.body.dump()
    } finally {
      await one.close()
      await two.close()
    }
  })

  it('a SQLite session store locked by another process stalls no request, and the use is recorded once the lock is gone', async () => {
    const value = 'L'.repeat(43)
    const id = sessionId(value)
    const at = Date.now() - 120_000 // long enough ago that this request records a use
    const store = gateway.state.runtime.signIn!.store
    await store.put({ id, issuer: 'sso', subject: 'locked-out', claims: { sub: 'locked-out', groups: ['analysts'] }, createdAt: at, lastSeenAt: at, expiresAt: at + 3_600_000, refreshAt: null, sealed: null, audience: 'gateway' })
    // Another process's write transaction (as `bouncer sessions revoke` or another gateway holds one).
    const other = new DatabaseSync(join(dir, 'sessions.db'))
    other.exec('BEGIN IMMEDIATE')
    let page: Awaited<ReturnType<CookieJarClient['request']>>
    const started = performance.now()
    try {
      page = await cookieJar().request(`${gateway.url}/app/home`, { html: false, headers: { cookie: `bouncer_session=${value}` } })
    } finally {
      other.exec('COMMIT')
      other.close()
    }
    // Before: recording the use waited in SQLite's busy handler, on the event loop's thread, for up to 5 s.
    expect(performance.now() - started).toBeLessThan(1_500)
    expect(page.status, page.body).toBe(200)
    await waitFor(async () => ((await store.get(id))?.lastSeenAt ?? 0) > at, 'the use recorded after the lock', 5_000)
  })

  it('a provider that answers no OAuth answer at all (a proxy\'s 502 page): 503 identity_provider_unavailable at a refresh and at a callback, and the session is kept', async () => {
    const client = cookieJar()
    await signIn(client, gateway.url, '/app/home', ALICE)
    const signedInAt = Date.now()
    const { client: midway, callback } = await callbackOf(gateway.url, ALICE)
    // The provider goes; a proxy in front of it answers 502 with its HTML page.
    await idp.stop()
    const proxy = createServer((_req, res) => {
      res.writeHead(502, { 'content-type': 'text/html' }).end('<html><body>502 Bad Gateway</body></html>')
    })
    proxy.listen(idp.port, '127.0.0.1')
    await once(proxy, 'listening')
    try {
      await waitFor(() => Date.now() > signedInAt + 3_500, 'the ID token to expire', 10_000)
      // Before: read as the provider refusing, the refresh ended the session (401 session_expired)
      // and the callback answered 400.
      const refreshing = await client.request(`${gateway.url}/app/home`, { html: false })
      expect(refreshing.status, refreshing.body).toBe(503)
      expect(problem(refreshing).code).toBe('identity_provider_unavailable')
      const exchanging = await midway.request(callback, { html: false })
      expect(exchanging.status, exchanging.body).toBe(503)
      expect(problem(exchanging).code).toBe('identity_provider_unavailable')
    } finally {
      proxy.close()
      await once(proxy, 'close')
      await idp.restart(idp.keys)
    }
    // The provider back, the same session refreshes and goes on, at once: the failed refresh let
    // its claim go (SessionStore.releaseRefresh), so this one does not wait for it to lapse (40 s).
    const retried = performance.now()
    expect((await client.request(`${gateway.url}/app/home`, { html: false })).status).toBe(200)
    expect(performance.now() - retried).toBeLessThan(5_000)
  })

  it('a provider whose answer is cut off mid-body (its connection dropped): 503 at a refresh and at a callback, and the session is kept', async () => {
    const client = cookieJar()
    await signIn(client, gateway.url, '/app/home', ALICE)
    const signedInAt = Date.now()
    const { client: midway, callback } = await callbackOf(gateway.url, ALICE)
    // The provider's connection drops halfway through its JSON answer (a restart, a load balancer's reset).
    await idp.stop()
    const proxy = createServer((_req, res) => {
      res.writeHead(200, { 'content-type': 'application/json', 'content-length': '200' })
      res.write('{"access_token":"eyJ', () => res.socket?.destroy())
    })
    proxy.listen(idp.port, '127.0.0.1')
    await once(proxy, 'listening')
    try {
      await waitFor(() => Date.now() > signedInAt + 3_500, 'the ID token to expire', 10_000)
      // Before: read as an answer that fails its checks (OAUTH_PARSE_ERROR), the refresh ended the
      // session (401 session_expired) and the callback answered 400, for a network failure.
      const refreshing = await client.request(`${gateway.url}/app/home`, { html: false })
      expect(refreshing.status, refreshing.body).toBe(503)
      expect(problem(refreshing).code).toBe('identity_provider_unavailable')
      const exchanging = await midway.request(callback, { html: false })
      expect(exchanging.status, exchanging.body).toBe(503)
      expect(problem(exchanging).code).toBe('identity_provider_unavailable')
    } finally {
      proxy.close()
      proxy.closeAllConnections()
      await once(proxy, 'close')
      await idp.restart(idp.keys)
    }
    expect((await client.request(`${gateway.url}/app/home`, { html: false })).status).toBe(200)
  })
})
