// Found by the sessions probe: a sign-in link whose return_to is one of sign-in's own endpoints
// (`/.bouncer/sign_in?return_to=/.bouncer/callback?state=x`, anyone can post such a link) was
// taken: the person signed in at the provider, and the gateway then sent them to its callback,
// where the state cookie it had just cleared was missing — 400 "state does not match" right after
// a successful sign-in, as if signing in were broken. Back to the sign-in endpoint itself, the
// browser went round the provider a second time and the session just made was ended for another.
// Now such a return_to is refused at the start, as any return_to that is no page (after_sign_out_path
// is refused the same at `bouncer check`); the router's spellings of the path count (case, trailing
// slash, percent-encoded letters).
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { closeAll } from '../helpers/browser.ts'
import { cookieJar, submitLogin } from '../helpers/cookie-jar.ts'
import { heldPort } from '../helpers/faults.ts'
import type { TestGateway } from '../helpers/gateway.ts'
import type { TestIdentityProvider } from '../helpers/identity-provider.ts'
import { ALICE, analystsMayGet, SCOPES_WITH_GROUPS, sessionRoute, signInConfig, startSignInGateway, startSignInProvider } from '../helpers/sign-in.ts'
import { startUpstream, type TestUpstream } from '../helpers/upstream.ts'

let idp: TestIdentityProvider
let upstream: TestUpstream
let gateway: TestGateway

beforeAll(async () => {
  upstream = await startUpstream()
  const held = await heldPort()
  idp = await startSignInProvider(held.port, { people: [ALICE] })
  gateway = await startSignInGateway({
    ...signInConfig(idp, { scopes: SCOPES_WITH_GROUPS, session: { store: 'memory' } }),
    ...analystsMayGet(),
    ...sessionRoute(upstream.url),
  }, { port: held })
}, 60_000)

afterAll(() => closeAll(gateway, upstream, idp))

describe('a return_to naming one of sign-in\'s own endpoints', { timeout: 60_000 }, () => {
  it.each([
    '/.bouncer/callback?state=x&code=y',
    '/.bouncer/sign_in?return_to=/people/home',
    '/.bouncer/sign_out',
    '/.bouncer/CALLBACK/',
    '/.bouncer/%63allback?state=x',
  ])('%s: refused at the start (400), before anyone signs in', async (returnTo) => {
    const client = cookieJar()
    const start = await client.request(`${gateway.url}/.bouncer/sign_in?return_to=${encodeURIComponent(returnTo)}`)
    expect(start.status, `${start.location ?? ''} ${start.body}`).toBe(400)
    expect(JSON.parse(start.body)).toMatchObject({ code: 'bad_request', detail: expect.stringContaining('return_to') })
  })

  it('a page of the gateway under the same folder still signs in and lands there', async () => {
    const client = cookieJar()
    const start = await client.request(`${gateway.url}/.bouncer/sign_in?return_to=${encodeURIComponent('/people/.bouncer/callback')}`)
    expect(start.status, start.body).toBe(302)
    const toLogin = await client.follow(start.location!)
    const loggedIn = await submitLogin(client, toLogin.reply!, ALICE.username, ALICE.password)
    const callback = await client.follow(loggedIn.location!, { stop: (url) => url.startsWith(`${gateway.url}/.bouncer/callback`) })
    const back = await client.request(callback.url)
    expect(back.status, back.body).toBe(302)
    expect(back.location).toBe(`${gateway.url}/people/.bouncer/callback`)
  })
})
