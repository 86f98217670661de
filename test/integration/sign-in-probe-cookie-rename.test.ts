// Found by an adversarial probe: the gateway withholds its session cookie from upstreams by its
// configured name, so after sign_in.cookie.name was renamed, browsers' cookies under the old name
// (each a live session's id: a bearer credential) went to every upstream until they expired. Now
// the names the cookie had are withheld too: those used earlier in the running process (a reload's
// rename) on their own, and sign_in.cookie.previous_names across a restart. A browser that signs in
// again under the new name, or signs out, has the old cookie cleared and its session ended. A real provider and
// sign-in, and a real upstream that echoes the Cookie header it received.
import { request } from 'undici'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { sessionId } from '../../src/identity/index.ts'
import { closeAll } from '../helpers/browser.ts'
import { cookieJar, submitLogin, type CookieJarClient } from '../helpers/cookie-jar.ts'
import { heldPort } from '../helpers/faults.ts'
import type { TestGateway } from '../helpers/gateway.ts'
import type { TestIdentityProvider } from '../helpers/identity-provider.ts'
import { ALICE, analystsMayGet, SCOPES_WITH_GROUPS, signInConfig, startSignInGateway, startSignInProvider } from '../helpers/sign-in.ts'
import { startUpstream, type TestUpstream } from '../helpers/upstream.ts'

const ADMIN_TOKEN = 'sign-in-probe-cookie-rename-admin-0123456789'

let idp: TestIdentityProvider
let upstream: TestUpstream
let gateway: TestGateway
let restarted: TestGateway | undefined

function config(cookie: Record<string, unknown>): Record<string, unknown> {
  return {
    admin: { token: ADMIN_TOKEN },
    ...signInConfig(idp, { scopes: SCOPES_WITH_GROUPS, cookie }),
    ...analystsMayGet(),
    upstreams: [{ name: 'app', url: upstream.url }],
    routes: [
      { id: 'people', path: '/people/*', upstream: 'app', accept: ['session'] },
      { id: 'open', path: '/open/*', upstream: 'app', public: true },
    ],
  }
}

beforeAll(async () => {
  upstream = await startUpstream()
  const held = await heldPort()
  idp = await startSignInProvider(held.port, { people: [ALICE] })
  gateway = await startSignInGateway(config({}), { port: held })
}, 60_000)

afterAll(() => closeAll(restarted, gateway, upstream, idp))

const atCallback = (url: string) => url.startsWith(`${gateway.url}/.bouncer/callback`)

/** Signs in through the provider (its login form when it asks) and returns the callback's answer itself. */
async function signIn(client: CookieJarClient) {
  let step = await client.follow(`${gateway.url}/people/start`, { stop: atCallback })
  if (step.reply !== null) {
    const loggedIn = await submitLogin(client, step.reply, ALICE.username, ALICE.password)
    step = await client.follow(loggedIn.location!, { stop: atCallback })
  }
  expect(step.reply, 'the provider to send the browser back to the callback').toBeNull()
  const answer = await client.request(step.url)
  expect(answer.status, answer.body).toBe(302)
  return answer
}

/** The Cookie header the upstream received for a request to a public route with `cookie`. */
async function forwardedCookie(at: TestGateway, cookie: string): Promise<string | undefined> {
  const res = await request(`${at.url}/open/page`, { headers: { cookie } })
  expect(res.statusCode).toBe(200)
  return ((await res.body.json()) as { headers: Record<string, string | undefined> }).headers.cookie
}

async function reloadWith(cookie: Record<string, unknown>): Promise<void> {
  await gateway.writeConfig(config(cookie))
  const res = await request(`${gateway.adminUrl}/api/reload`, { method: 'POST', headers: { authorization: `Bearer ${ADMIN_TOKEN}` } })
  expect(res.statusCode, await res.body.text()).toBe(200)
}

describe('renaming sign_in.cookie.name', { timeout: 60_000 }, () => {
  it('a reload\'s rename: the old-named session cookie still never reaches the upstream, and signing in again clears it and ends its session', async () => {
    const client = cookieJar()
    await signIn(client)
    const old = client.cookies(gateway.url).bouncer_session!
    expect(await forwardedCookie(gateway, `bouncer_session=${old}; theme=dark`)).toBe('theme=dark')

    await reloadWith({ name: 'app_session' })
    expect(await forwardedCookie(gateway, `bouncer_session=${old}; theme=dark; bouncer_session_state=x`)).toBe('theme=dark')
    expect(await gateway.state.runtime.signIn!.store.get(sessionId(old))).toBeDefined() // renaming ends no session

    const again = await signIn(client)
    const cleared = [again.headers['set-cookie'] ?? []].flat().find((line) => line.startsWith('bouncer_session='))
    expect(cleared).toMatch(/^bouncer_session=; Path=\/; Max-Age=0;/)
    expect(await gateway.state.runtime.signIn!.store.get(sessionId(old))).toBeUndefined()
    expect(Object.keys(client.cookies(gateway.url))).toEqual(['app_session'])
    const fresh = client.cookies(gateway.url).app_session!
    expect(await forwardedCookie(gateway, `app_session=${fresh}; theme=dark`)).toBe('theme=dark')
  })

  it('signing out with a cookie under a former name clears it and ends its session too', async () => {
    const client = cookieJar()
    await signIn(client)
    const held = client.cookies(gateway.url).app_session!
    await reloadWith({ name: 'third_session' })
    const out = await client.request(`${gateway.url}/.bouncer/sign_out`, { method: 'POST', headers: { origin: gateway.url }, html: false })
    expect(out.status, out.body).toBe(302)
    expect([out.headers['set-cookie'] ?? []].flat()).toContainEqual(expect.stringMatching(/^app_session=; Path=\/; Max-Age=0;/))
    expect(await gateway.state.runtime.signIn!.store.get(sessionId(held))).toBeUndefined()
    expect(client.cookies(gateway.url).app_session).toBeUndefined()
  })

  it('a gateway started with previous_names (a restart knows no earlier name of its own) withholds the old-named cookie', async () => {
    restarted = await startSignInGateway(config({ name: 'app_session', previous_names: ['bouncer_session'] }))
    const old = 'A'.repeat(43)
    expect(await forwardedCookie(restarted, `bouncer_session=${old}; theme=dark; bouncer_session_state=x; app_session=${old}`)).toBe('theme=dark')
  })
})
