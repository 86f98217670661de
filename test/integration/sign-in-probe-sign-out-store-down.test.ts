// Found by the people probe: a person who signed out while the session store could not be reached
// (Redis stalled, here) stayed signed in in that browser. The sign-out answered 503 "the session
// store cannot be reached" and cleared nothing, so the cookie stayed, and once the store answered
// again the browser was signed in as before: on a shared computer, the next person to open it was
// the one who had signed out. Now the cookie is cleared all the same (the 503 says the session
// itself could not be ended, and the log names it for an operator to revoke): this browser is
// signed out whatever the store does. A real provider and sign-in; the shared Redis behind a relay
// that stalls.
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { sessionId } from '../../src/identity/index.ts'
import { closeAll } from '../helpers/browser.ts'
import { cookieJar, submitLogin } from '../helpers/cookie-jar.ts'
import { heldPort, startFreezingRelay, type FreezingRelay } from '../helpers/faults.ts'
import type { TestGateway } from '../helpers/gateway.ts'
import type { TestIdentityProvider } from '../helpers/identity-provider.ts'
import { uniquePrefix } from '../helpers/redis.ts'
import { ALICE, analystsMayGet, SCOPES_WITH_GROUPS, sessionRoute, signInConfig, startSignInGateway, startSignInProvider } from '../helpers/sign-in.ts'
import { startUpstream, type TestUpstream } from '../helpers/upstream.ts'

let relay: FreezingRelay
let idp: TestIdentityProvider
let upstream: TestUpstream
let gateway: TestGateway

beforeAll(async () => {
  relay = await startFreezingRelay(6379)
  upstream = await startUpstream()
  const held = await heldPort()
  idp = await startSignInProvider(held.port, { people: [ALICE], afterSignOut: '/' })
  gateway = await startSignInGateway({
    ...signInConfig(idp, {
      scopes: SCOPES_WITH_GROUPS,
      session: { store: { type: 'redis', url: `redis://127.0.0.1:${relay.port}`, prefix: uniquePrefix('sign-out-store-down'), timeout: '500ms' } },
    }),
    ...analystsMayGet(),
    ...sessionRoute(upstream.url),
  }, { port: held })
}, 60_000)

afterAll(async () => {
  relay?.thaw()
  await closeAll(gateway, upstream, idp)
  relay?.close()
})

describe('signing out while the session store cannot be reached', { timeout: 60_000 }, () => {
  it('answers 503 saying so, and clears the cookie: the browser is signed out when the store is back', async () => {
    const client = cookieJar()
    const toLogin = await client.follow(`${gateway.url}/people/start`)
    const loggedIn = await submitLogin(client, toLogin.reply!, ALICE.username, ALICE.password)
    const back = await client.follow(loggedIn.location!)
    expect(back.reply?.status, back.reply?.body).toBe(200)
    const id = sessionId(client.cookies(gateway.url).bouncer_session!)

    relay.freeze()
    let out
    try {
      out = await client.request(`${gateway.url}/.bouncer/sign_out`, { method: 'POST', headers: { origin: gateway.url } })
    } finally {
      relay.thaw()
    }
    expect(out.status, out.body).toBe(503)
    expect(JSON.parse(out.body)).toMatchObject({ code: 'identity_provider_unavailable', detail: expect.stringContaining('signed out in this browser') })
    expect([out.headers['set-cookie']].flat().join('\n')).toMatch(/^bouncer_session=; Path=\/; Max-Age=0;/m)
    expect(client.cookies(gateway.url).bouncer_session).toBeUndefined()
    expect(gateway.logs.join('')).toContain(id) // named for an operator to revoke

    // The store answers again: this browser is not signed in.
    const after = await client.request(`${gateway.url}/people/report`, { html: false })
    expect(after.status).toBe(401)
    expect(JSON.parse(after.body)).toMatchObject({ code: 'session_required' })
  })
})
