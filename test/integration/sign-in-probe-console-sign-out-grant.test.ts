// Found by the people probe: signing out of the console signed the person out of the gateway's
// applications too. The console signs in through sign_in's provider and client (docs/people.md: "a
// second redirect URI of the same client"), and its sign-out, which promises to end "only its own"
// session, revoked its refresh token at the provider (RFC 7009). Providers that revoke a refresh
// token's whole grant (oidc-provider does; Keycloak ends the client's session) then revoked the
// refresh token of the person's gateway session in the same browser, which shares that grant: at
// its next refresh, the gateway session ended, 401 session_expired "the provider no longer vouches
// for this session", and the person, who had only left the console, was sent to sign in again.
// Now only a sign-out that ends the person's session at the provider (the gateway's) revokes its
// refresh token there. Real provider (oidc-provider), gateway and admin listener.
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { sessionId } from '../../src/identity/index.ts'
import { closeAll } from '../helpers/browser.ts'
import { cookieJar, submitLogin } from '../helpers/cookie-jar.ts'
import { heldPort } from '../helpers/faults.ts'
import type { TestGateway } from '../helpers/gateway.ts'
import type { TestIdentityProvider } from '../helpers/identity-provider.ts'
import { ALICE, analystsMayGet, SCOPES_WITH_GROUPS, sessionRoute, signInConfig, startSignInGateway, startSignInProvider } from '../helpers/sign-in.ts'
import { startUpstream, type TestUpstream } from '../helpers/upstream.ts'
import { waitFor } from '../helpers/wait.ts'

let idp: TestIdentityProvider
let upstream: TestUpstream
let gateway: TestGateway

beforeAll(async () => {
  upstream = await startUpstream()
  const held = await heldPort()
  const heldAdmin = await heldPort()
  idp = await startSignInProvider([held.port, heldAdmin.port], { people: [ALICE], afterSignOut: '/' })
  gateway = await startSignInGateway({
    admin: { roles: ['analysts'] },
    ...signInConfig(idp, { scopes: [...SCOPES_WITH_GROUPS, 'offline_access'], session: { store: 'memory' } }),
    ...analystsMayGet(),
    ...sessionRoute(upstream.url),
  }, { port: held, adminPort: heldAdmin })
}, 60_000)

afterAll(() => closeAll(gateway, upstream, idp))

describe('signing out of the console', { timeout: 60_000 }, () => {
  it('leaves the person\'s gateway session in the same browser working, through its next refresh', async () => {
    const browser = cookieJar()
    const toLogin = await browser.follow(`${gateway.url}/people/start`)
    const loggedIn = await submitLogin(browser, toLogin.reply!, ALICE.username, ALICE.password)
    expect((await browser.follow(loggedIn.location!)).reply?.status).toBe(200)
    // The console, in the same browser: signed in at once, the provider's session still there.
    const toConsole = await browser.follow(`${gateway.adminUrl}/.bouncer/sign_in?return_to=/`)
    expect(toConsole.chain.some((url) => url.startsWith(`${gateway.adminUrl}/.bouncer/callback`))).toBe(true)
    expect(browser.cookies(gateway.adminUrl).bouncer_console).toBeDefined()

    const out = await browser.request(`${gateway.adminUrl}/.bouncer/sign_out`, { method: 'POST', headers: { origin: gateway.adminUrl } })
    expect(out.status).toBe(302)
    expect(out.location).not.toContain(idp.issuer) // the console's sign-out leaves the provider's session alone
    expect(browser.cookies(gateway.adminUrl).bouncer_console).toBeUndefined()
    // What the sign-out did with the console session's refresh token is done (it goes on after the answer).
    const asked = idp.tokenRequests
    await waitFor(() => gateway.logs.some((line) => /refresh token (was revoked|could not be revoked|is left) at the provider/.test(line)), 'the refresh token\'s fate')

    // The gateway session's ID token comes due: its refresh still works.
    const store = gateway.state.runtime.signIn!.store
    const id = sessionId(browser.cookies(gateway.url).bouncer_session!)
    const record = (await store.get(id))!
    await store.update({ ...record, refreshAt: Date.now() - 1_000 })
    const page = await browser.request(`${gateway.url}/people/report`, { html: false })
    expect(page.status, page.body).toBe(200)
    expect(idp.tokenRequests).toBeGreaterThan(asked) // refreshed at the provider
  })
})
