// Found by the sessions probe: a reload that removes sign_in (a route moved to bearer tokens, sign-in
// switched off for a while) stopped withholding the session cookie from upstreams. Browsers keep
// sending `bouncer_session` until its Max-Age (the session's ttl), and from the reload on every
// upstream got it in its Cookie header: a live session's credential, good again at this gateway as
// soon as sign_in comes back with the same store (an SQLite file or Redis outlives the reload).
// README: "the gateway withholds every name the cookie had in the running process". Now every
// session cookie name the process has known, its state cookie's with it, stays withheld.
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { request } from 'undici'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { closeAll } from '../helpers/browser.ts'
import { cookieJar, submitLogin } from '../helpers/cookie-jar.ts'
import { heldPort } from '../helpers/faults.ts'
import type { TestGateway } from '../helpers/gateway.ts'
import type { TestIdentityProvider } from '../helpers/identity-provider.ts'
import { ALICE, analystsMayGet, SCOPES_WITH_GROUPS, signInConfig, startSignInGateway, startSignInProvider } from '../helpers/sign-in.ts'
import { startUpstream, type TestUpstream } from '../helpers/upstream.ts'

const ADMIN_TOKEN = 'sessions-probe-sign-in-removed-admin-0123456789'

let dir: string
let idp: TestIdentityProvider
let upstream: TestUpstream
let gateway: TestGateway

function config(withSignIn: boolean): Record<string, unknown> {
  const signIn = signInConfig(idp, { scopes: SCOPES_WITH_GROUPS, session: { store: { type: 'sqlite', path: join(dir, 'sessions.db') } } })
  return {
    admin: { token: ADMIN_TOKEN },
    issuers: signIn.issuers,
    ...(withSignIn ? { sign_in: signIn.sign_in } : {}),
    ...analystsMayGet(),
    upstreams: [{ name: 'app', url: upstream.url }],
    routes: [
      ...(withSignIn ? [{ id: 'people', path: '/people/*', upstream: 'app', accept: ['session'] }] : []),
      { id: 'open', path: '/open/*', upstream: 'app', public: true },
    ],
  }
}

async function reloadWith(next: Record<string, unknown>): Promise<void> {
  await gateway.writeConfig(next)
  const res = await request(`${gateway.adminUrl}/api/reload`, { method: 'POST', headers: { authorization: `Bearer ${ADMIN_TOKEN}` } })
  expect(res.statusCode, await res.body.text()).toBe(200)
}

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'sessions-probe-sign-in-removed-'))
  upstream = await startUpstream()
  const held = await heldPort()
  idp = await startSignInProvider(held.port, { people: [ALICE] })
  gateway = await startSignInGateway(config(true), { port: held })
}, 60_000)

afterAll(() => closeAll(gateway, upstream, idp, () => rm(dir, { recursive: true, force: true })))

describe('a reload that removes sign_in', { timeout: 60_000 }, () => {
  it('still keeps the session cookies from upstreams; the session works again once sign_in is back', async () => {
    const client = cookieJar()
    const toLogin = await client.follow(`${gateway.url}/people/home`)
    const loggedIn = await submitLogin(client, toLogin.reply!, ALICE.username, ALICE.password)
    expect((await client.follow(loggedIn.location!)).reply?.status).toBe(200)
    const cookie = client.cookies(gateway.url).bouncer_session!

    await reloadWith(config(false))
    const res = await request(`${gateway.url}/open/page`, { headers: { cookie: `theme=dark; bouncer_session=${cookie}; bouncer_session_state=x` } })
    expect(res.statusCode).toBe(200)
    const seen = (await res.body.json()) as { headers: Record<string, string> }
    expect(seen.headers.cookie).toBe('theme=dark')

    // Why it matters: the cookie is still a live session's, as soon as sign_in is back.
    await reloadWith(config(true))
    expect((await client.request(`${gateway.url}/people/home`, { html: false })).status).toBe(200)
  })
})
