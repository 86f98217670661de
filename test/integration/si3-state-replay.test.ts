// Found by the sign-in probe: a sign-in's state cookie could be used for more than one callback. A
// sign-in's state, nonce and PKCE verifier were checked against the sealed cookie only, and nothing
// remembered that a sign-in had finished: the provider's authorization URL opened again (the back
// button, a restored tab, a copy of the address) while the person's SSO session lasted gave a new
// code for the same state, nonce and PKCE challenge, and the same state cookie (kept by a browser
// whose callback answer was lost, or copied) made a second session from it. OAuth's state is a
// one-time value (RFC 6749 §10.12), and so is OIDC's nonce (OIDC Core §15.5.2): a callback's state
// is now taken once, across every instance on the session store.
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

describe('a sign-in\'s state is good for one callback', { timeout: 60_000 }, () => {
  it('the authorization URL opened again with the same state cookie gets a new code from the provider, and its callback is refused (400), making no second session', async () => {
    const client = cookieJar()
    const toLogin = await client.follow(`${gateway.url}/people/start`)
    const authorizationUrl = toLogin.chain[1]!
    expect(authorizationUrl.startsWith(idp.issuer)).toBe(true)
    const stateCookie = client.cookies(gateway.url).bouncer_session_state!
    const loggedIn = await submitLogin(client, toLogin.reply!, ALICE.username, ALICE.password)
    const signedIn = await client.follow(loggedIn.location!)
    expect(signedIn.reply?.status).toBe(200)
    expect(client.cookies(gateway.url).bouncer_session_state).toBeUndefined()
    const sessions = await gateway.state.runtime.signIn!.store.list(Date.now())
    expect(sessions).toHaveLength(1)

    // The same sign-in once more: the provider's SSO session answers at once with a fresh code.
    client.setCookie(gateway.url, 'bouncer_session_state', stateCookie)
    const again = await client.follow(authorizationUrl, { stop: (url) => url.startsWith(`${gateway.url}/.bouncer/callback`) })
    expect(again.reply).toBeNull()
    const replayed = await client.request(again.url)
    expect(replayed.status, replayed.body).toBe(400)
    expect(JSON.parse(replayed.body)).toMatchObject({ code: 'bad_request', detail: expect.stringContaining('already') })
    expect(await gateway.state.runtime.signIn!.store.list(Date.now())).toHaveLength(1)
  })
})
