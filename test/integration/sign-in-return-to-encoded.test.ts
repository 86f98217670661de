// Found by an adversarial probe (helper): a return_to with characters outside Latin-1 (/app/%E2%82%AC) was accepted at sign-in, and the callback then answered 500 (Node refuses such a Location header) after the session was already stored; the path is now sent back percent-encoded.
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { cookieJar, submitLogin } from '../helpers/cookie-jar.ts'
import { heldPort } from '../helpers/faults.ts'
import type { TestGateway } from '../helpers/gateway.ts'
import type { TestIdentityProvider } from '../helpers/identity-provider.ts'
import { ALICE, SCOPES_WITH_GROUPS, signInConfig, startSignInGateway, startSignInProvider } from '../helpers/sign-in.ts'
import { startUpstream, type TestUpstream } from '../helpers/upstream.ts'

let idp: TestIdentityProvider
let upstream: TestUpstream
let gateway: TestGateway

beforeAll(async () => {
  upstream = await startUpstream()
  const held = await heldPort()
  idp = await startSignInProvider(held.port, { people: [ALICE], afterSignOut: '/' })
  gateway = await startSignInGateway({
    ...signInConfig(idp, { scopes: SCOPES_WITH_GROUPS }),
    roles: [{ name: 'analysts', assumed_by: [{ issuer: 'sso', claims: { groups: 'analysts' } }], policies: ['read'] }],
    policies: [{ name: 'read', statements: [{ sid: 'App', effect: 'allow', actions: ['GET'], routes: ['app'] }] }],
    upstreams: [{ name: 'app', url: upstream.url }],
    routes: [{ id: 'app', path: '/app/*', upstream: 'app', accept: ['session'] }],
  }, { port: held })
}, 60_000)

afterAll(async () => {
  await gateway?.close()
  await upstream?.close()
  await idp?.stop()
})

describe('a return_to with non-ASCII characters', { timeout: 60_000 }, () => {
  it.each([
    ['/app/\u20ac', '/app/%E2%82%AC'],
    ['/app/caf\u00e9?q=\u00e9#top', '/app/caf%C3%A9?q=%C3%A9#top'],
  ])('%s: after signing in, the browser lands on %s', async (target, landing) => {
    const client = cookieJar()
    const start = await client.request(`${gateway.url}/.bouncer/sign_in?return_to=${encodeURIComponent(target)}`)
    expect(start.status, start.body).toBe(302)
    const toLogin = await client.follow(start.location!)
    const loggedIn = await submitLogin(client, toLogin.reply!, ALICE.username, ALICE.password)
    const callback = await client.follow(loggedIn.location!, { stop: (url) => url.startsWith(`${gateway.url}/.bouncer/callback`) })
    const back = await client.request(callback.url)
    expect(back.status, back.body).toBe(302)
    expect(back.location).toBe(`${gateway.url}${landing}`)
    const page = await client.request(`${gateway.url}${landing.split('#')[0]}`)
    expect(page.status, page.body).toBe(200)
  })
})
