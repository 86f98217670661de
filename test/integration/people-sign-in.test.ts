// Sign-in's answers a probe found wanting: a session's 401 without the challenge RFC 9110 asks of
// every 401, and a callback whose `iss` (RFC 9207) was changed or taken out answered as a replayed
// code. The real provider (oidc-provider), walked by a cookie-jar client.
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { request } from 'undici'
import { closeAll } from '../helpers/browser.ts'
import { cookieJar, submitLogin, type CookieJarClient } from '../helpers/cookie-jar.ts'
import { heldPort } from '../helpers/faults.ts'
import type { TestGateway } from '../helpers/gateway.ts'
import type { TestIdentityProvider } from '../helpers/identity-provider.ts'
import { ALICE, analystsMayGet, SCOPES_WITH_GROUPS, signInConfig, startSignInGateway, startSignInProvider } from '../helpers/sign-in.ts'
import { startUpstream, type TestUpstream } from '../helpers/upstream.ts'

/** 43 base64url characters, as the gateway writes them: a cookie naming no session. */
const UNKNOWN_SESSION = 'A'.repeat(43)

let dir: string
let idp: TestIdentityProvider
let upstream: TestUpstream
let gateway: TestGateway

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'bouncer-people-sign-in-'))
  upstream = await startUpstream()
  const held = await heldPort()
  idp = await startSignInProvider(held.port, { people: [ALICE], afterSignOut: '/' })
  gateway = await startSignInGateway({
    api_keys: { store: { type: 'sqlite', path: join(dir, 'keys.db') } },
    ...signInConfig(idp, { scopes: SCOPES_WITH_GROUPS, session: { store: 'memory' } }),
    ...analystsMayGet(),
    upstreams: [{ name: 'app', url: upstream.url }],
    routes: [
      { id: 'mixed', path: '/mixed/*', upstream: 'app', accept: ['session', 'bearer', 'api_key'] },
      { id: 'people', path: '/people/*', upstream: 'app', accept: ['session'] },
    ],
  }, { port: held })
}, 60_000)

afterAll(() => closeAll(gateway, upstream, idp, () => rm(dir, { recursive: true, force: true })))

async function problemOf(path: string, headers: Record<string, string> = {}) {
  const res = await request(`${gateway.url}${path}`, { headers: { accept: 'application/json', ...headers } })
  const body = (await res.body.json()) as { code: string }
  return { status: res.statusCode, code: body.code, challenge: res.headers['www-authenticate'] }
}

/** Signs in at the provider up to its redirect back, not followed: the callback URL and the browser holding its state. */
async function callbackOf(): Promise<{ client: CookieJarClient; callback: URL }> {
  const client = cookieJar()
  const toLogin = await client.follow(`${gateway.url}/people/start`)
  const loggedIn = await submitLogin(client, toLogin.reply!, ALICE.username, ALICE.password)
  const stopped = await client.follow(loggedIn.location!, { stop: (url) => url.startsWith(`${gateway.url}/.bouncer/callback`) })
  return { client, callback: new URL(stopped.url) }
}

describe('a session\'s 401 names a challenge', () => {
  it('on a route that also takes bearer tokens and API keys: session_required and session_expired carry Bearer, as missing_token does', async () => {
    expect(await problemOf('/mixed/report')).toEqual({ status: 401, code: 'session_required', challenge: 'Bearer' })
    expect(await problemOf('/mixed/report', { cookie: `bouncer_session=${UNKNOWN_SESSION}` })).toEqual({ status: 401, code: 'session_expired', challenge: 'Bearer' })
    expect(await problemOf('/mixed/report', { cookie: 'bouncer_session=not-one-of-ours' })).toEqual({ status: 401, code: 'session_required', challenge: 'Bearer' })
    // The credentials' own challenges are kept: a bad API key says invalid_token.
    expect((await problemOf('/mixed/report', { 'x-api-key': 'bk_nope' })).challenge).toMatch(/^Bearer error="invalid_token"/)
  })

  it('a page load is still sent to sign in, and a session-only route names none (a cookie has no HTTP challenge)', async () => {
    const page = await request(`${gateway.url}/mixed/report`, { headers: { accept: 'text/html' } })
    await page.body.dump()
    expect(page.statusCode).toBe(302)
    expect(page.headers['www-authenticate']).toBeUndefined()
    expect(await problemOf('/people/report')).toEqual({ status: 401, code: 'session_required', challenge: undefined })
  })
})

describe('the callback\'s iss (RFC 9207)', { timeout: 60_000 }, () => {
  it('a changed or missing iss is refused as such, before the code is exchanged; the genuine callback then signs in', async () => {
    const { client, callback } = await callbackOf()
    expect(callback.searchParams.get('iss')).toBe(idp.issuer) // the provider sends it, and advertises it
    const exchanges = idp.tokenRequests

    const changed = new URL(callback)
    changed.searchParams.set('iss', 'https://attacker.example/')
    const refused = await client.request(changed.href)
    expect(refused.status).toBe(400)
    expect(JSON.parse(refused.body).detail).toBe(`The sign-in's answer does not say it comes from the provider it began at: the callback's iss is not ${idp.issuer} (RFC 9207). Start again.`)

    const removed = new URL(callback)
    removed.searchParams.delete('iss')
    const missing = await client.request(removed.href)
    expect(missing.status).toBe(400)
    expect(JSON.parse(missing.body).detail).toContain(`the callback carries no iss parameter, which ${idp.issuer} always sends`)

    expect(idp.tokenRequests).toBe(exchanges) // the code never left the gateway
    const genuine = await client.request(callback.href)
    expect(genuine.status).toBe(302)
    expect(genuine.location).toBe(`${gateway.url}/people/start`)
    expect(client.cookies(gateway.url).bouncer_session).toMatch(/^[A-Za-z0-9_-]{43}$/)
  })
})

// Found by an adversarial probe (helper "browser"): signing in again in a browser that held a
// session replaced its cookie but left the earlier session valid to its ttl, so a copy of the old
// cookie (taken from this browser, or left by whoever used it before) kept working.
describe('signing in again in a browser that holds a session', { timeout: 60_000 }, () => {
  it('ends the earlier session: its cookie is refused afterwards, the new one works', async () => {
    const { client, callback } = await callbackOf()
    expect((await client.request(callback.href)).status).toBe(302)
    const earlier = client.cookies(gateway.url).bouncer_session!
    expect((await problemOf('/people/report', { cookie: `bouncer_session=${earlier}` })).status).toBe(200) // signed in: the upstream answers

    // Again, at the sign-in link: the provider's own session signs the person in, or its form asks again.
    const again = await client.follow(`${gateway.url}/.bouncer/sign_in?return_to=/people/again`, { stop: (url) => url.startsWith(`${gateway.url}/.bouncer/callback`) })
    const back = again.reply === null ? again.url : (await client.follow((await submitLogin(client, again.reply, ALICE.username, ALICE.password)).location!, { stop: (url) => url.startsWith(`${gateway.url}/.bouncer/callback`) })).url
    const landed = await client.request(back)
    expect(landed.status).toBe(302)
    expect(landed.location).toBe(`${gateway.url}/people/again`)
    const renewed = client.cookies(gateway.url).bouncer_session!
    expect(renewed).not.toBe(earlier)

    expect(await problemOf('/people/report', { cookie: `bouncer_session=${earlier}` })).toMatchObject({ status: 401, code: 'session_expired' })
    expect((await problemOf('/people/report', { cookie: `bouncer_session=${renewed}` })).status).toBe(200)
  })
})
