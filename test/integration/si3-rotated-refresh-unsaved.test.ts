// Found by the sign-in probe: a refresh whose answer the session store failed to write lost the
// provider's rotated refresh token. Providers that rotate (Auth0, Okta, Entra for single-page
// apps; oidc-provider here) spend the old refresh token at each refresh; the store, Redis at its
// maxmemory here, refused the new one, the request got 503, and the session kept its spent token:
// the next request refreshed with it, the provider answered invalid_grant (and revoked the grant),
// and the person was signed out (401 session_expired, "the provider no longer vouches for this
// session"). Now the refreshed session is kept in the process until the store takes it, the 503
// says the sign-in was renewed but not saved, and the next request writes it instead of spending
// the old token again. A private redis-server: its maxmemory is set at run time.
import { Redis } from 'ioredis'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { sessionId } from '../../src/identity/index.ts'
import { closeAll } from '../helpers/browser.ts'
import { cookieJar, submitLogin } from '../helpers/cookie-jar.ts'
import { heldPort } from '../helpers/faults.ts'
import type { TestGateway } from '../helpers/gateway.ts'
import type { TestIdentityProvider } from '../helpers/identity-provider.ts'
import { startRedis, type TestRedis } from '../helpers/redis.ts'
import { ALICE, analystsMayGet, SCOPES_WITH_GROUPS, sessionRoute, signInConfig, startSignInGateway, startSignInProvider } from '../helpers/sign-in.ts'
import { startUpstream, type TestUpstream } from '../helpers/upstream.ts'

let idp: TestIdentityProvider
let upstream: TestUpstream
let gateway: TestGateway
let redis: TestRedis
let admin: Redis

beforeAll(async () => {
  redis = await startRedis()
  admin = new Redis(redis.url)
  upstream = await startUpstream()
  const held = await heldPort()
  idp = await startSignInProvider(held.port, { people: [ALICE], rotateRefreshTokens: true })
  gateway = await startSignInGateway({
    ...signInConfig(idp, { scopes: SCOPES_WITH_GROUPS, session: { store: { type: 'redis', url: redis.url, prefix: 'si3:' } } }),
    ...analystsMayGet(),
    ...sessionRoute(upstream.url),
  }, { port: held })
}, 60_000)

afterAll(() => closeAll(gateway, upstream, idp, async () => {
  admin?.disconnect()
  await redis?.stop()
}))

/** A signed-in person whose next refresh the provider answers (rotating its refresh token) and the store refuses to save: the 503. */
async function unsavedRefresh() {
  const client = cookieJar()
  const toLogin = await client.follow(`${gateway.url}/people/start`)
  const loggedIn = await submitLogin(client, toLogin.reply!, ALICE.username, ALICE.password)
  expect((await client.follow(loggedIn.location!)).reply?.status).toBe(200)
  const id = sessionId(client.cookies(gateway.url).bouncer_session!)
  const store = gateway.state.runtime.signIn!.store
  const record = (await store.get(id))!
  expect(record.refreshAt).not.toBeNull()
  await store.update({ ...record, refreshAt: Date.now() - 1_000 })

  // The provider answers the refresh (its old refresh token now spent); the store then refuses writes.
  idp.rewriteTokens = async (answer) => {
    expect(answer.refresh_token).toBeTypeOf('string')
    await admin.config('SET', 'maxmemory', '1')
    return answer
  }
  let unsaved
  try {
    unsaved = await client.request(`${gateway.url}/people/report`, { html: false })
  } finally {
    idp.rewriteTokens = null
    await admin.config('SET', 'maxmemory', '0')
  }
  expect(unsaved.status, unsaved.body).toBe(503)
  return { client, id, store, record, unsaved }
}

describe('a rotated refresh token the store could not save', { timeout: 60_000 }, () => {
  it('503 saying the sign-in was renewed but not saved; the next request saves it, the person stays signed in, and the provider is not asked again', async () => {
    const { client, id, store, record, unsaved } = await unsavedRefresh()
    expect(unsaved.headers['retry-after']).toBeDefined()
    expect(JSON.parse(unsaved.body)).toMatchObject({ code: 'identity_provider_unavailable', detail: expect.stringContaining('renewed') })
    expect(gateway.logs.some((line) => line.includes('could not be saved'))).toBe(true)

    const refreshes = idp.tokenRequests
    const back = await client.request(`${gateway.url}/people/report`, { html: false })
    expect(back.status, back.body).toBe(200)
    expect(idp.tokenRequests).toBe(refreshes)
    const saved = (await store.get(id))!
    expect(saved.sealed).not.toBe(record.sealed)
    expect(saved.refreshAt).toBeGreaterThan(Date.now())
  })

  // The unsaved session was kept by the config's sign-in, which a reload compiles anew: after the
  // reload, the next request refreshed with the spent token, and the person was signed out.
  it('is kept across a reload: the next request after it saves the session, and the provider is not asked again', async () => {
    const { client, id, store, record } = await unsavedRefresh()
    expect(await gateway.reload()).toMatchObject({ ok: true }) // a new sign-in compiled, as every reload's
    expect(gateway.state.runtime.signIn!.store).toBe(store) // the same store: its unsaved sessions stay
    const refreshes = idp.tokenRequests
    const back = await client.request(`${gateway.url}/people/report`, { html: false })
    expect(back.status, back.body).toBe(200)
    expect(idp.tokenRequests).toBe(refreshes)
    expect((await store.get(id))!.sealed).not.toBe(record.sealed)
  })
})
