// Found by the limits probe (helper): a signed-in person's browser signs in again without a prompt
// while the provider's session lasts, so a script holding that session made a new gateway session
// every ~17 ms (30 in half a second here), each a record in the gateway process (sessions in
// `memory`) until its idle timeout, with no bound: gigabytes within an hour. One person now holds
// at most 100 sessions in the memory store; a sign-in past that ends the person's oldest.
import { request } from 'undici'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { cookieJar, submitLogin, type CookieJarClient } from '../helpers/cookie-jar.ts'
import { heldPort } from '../helpers/faults.ts'
import type { TestGateway } from '../helpers/gateway.ts'
import type { Person, TestIdentityProvider } from '../helpers/identity-provider.ts'
import { SCOPES_WITH_GROUPS, signInConfig, startSignInGateway, startSignInProvider } from '../helpers/sign-in.ts'
import { startUpstream, type TestUpstream } from '../helpers/upstream.ts'

const MAL: Person = { username: 'mal', password: 'mal-password-123', name: 'Mal Loop', email: 'mal@example.com', groups: ['staff'] }
/** store.ts SESSIONS_PER_PERSON, as docs/people.md says it (test/unit/identity/session-stores.test.ts holds every store to it). */
const MEMORY_SESSIONS_PER_PERSON = 100
const ADMIN = { authorization: 'Bearer session-per-person-admin-token-0123' }

let idp: TestIdentityProvider
let upstream: TestUpstream
let gateway: TestGateway

beforeAll(async () => {
  upstream = await startUpstream()
  const held = await heldPort()
  idp = await startSignInProvider(held.port, { people: [MAL] })
  gateway = await startSignInGateway({
    admin: { token: ADMIN.authorization.slice(7) },
    ...signInConfig(idp, { scopes: SCOPES_WITH_GROUPS, session: { store: 'memory' } }),
    roles: [{ name: 'people', assumed_by: [{ issuer: 'sso', claims: { groups: 'staff' } }], policies: ['all'] }],
    policies: [{ name: 'all', statements: [{ sid: 'All', effect: 'allow', actions: ['*'], routes: ['*'] }] }],
    upstreams: [{ name: 'app', url: upstream.url }],
    routes: [{ id: 'app', path: '/app/*', upstream: 'app', accept: ['session'] }],
  }, { port: held })
}, 60_000)

afterAll(async () => {
  await gateway?.close()
  await upstream?.close()
  await idp?.stop()
})

/** A browser that holds the provider's session, and no gateway session: it signs in without a prompt. */
async function silentSignIn(provider: CookieJarClient): Promise<string> {
  const browser = cookieJar()
  const origin = new URL(idp.issuer).origin
  for (const [name, value] of Object.entries(provider.cookies(origin))) browser.setCookie(origin, name, value)
  await browser.follow(`${gateway.url}/app/start`)
  const cookie = browser.cookies(gateway.url).bouncer_session
  expect(cookie).toBeDefined()
  return cookie as string
}

async function opens(cookie: string): Promise<number> {
  const res = await request(`${gateway.url}/app/x`, { headers: { cookie: `bouncer_session=${cookie}` } })
  await res.body.dump()
  return res.statusCode
}

async function sessionsOf(subject: string): Promise<number> {
  const res = await request(`${gateway.adminUrl}/api/sessions`, { headers: ADMIN })
  return ((await res.body.json()) as Array<{ subject: string }>).filter((s) => s.subject === subject).length
}

describe('sessions in memory, one person signing in again and again', { timeout: 60_000 }, () => {
  it('are at most 100 a person: a sign-in past that ends the oldest', async () => {
    const provider = cookieJar()
    const toLogin = await provider.follow(`${gateway.url}/app/start`)
    await provider.follow((await submitLogin(provider, toLogin.reply!, MAL.username, MAL.password)).location!)
    const first = provider.cookies(gateway.url).bouncer_session as string
    const second = await silentSignIn(provider)
    expect([await opens(first), await opens(second)]).toEqual([200, 200])
    let last = second
    for (let i = 2; i < MEMORY_SESSIONS_PER_PERSON + 1; i++) last = await silentSignIn(provider)
    expect(await sessionsOf(MAL.username)).toBe(MEMORY_SESSIONS_PER_PERSON)
    // The oldest ended; the one after it, and the newest, go on.
    expect([await opens(first), await opens(second), await opens(last)]).toEqual([401, 200, 200])
  })
})
