// Found by the people probe: at a refresh, every OAuth error answer of the provider's token
// endpoint was read as the provider refusing the person (openid-client's ResponseBodyError), and
// the session was deleted: a provider rate-limiting the gateway (429 `too_many_requests`), one
// saying it is too busy (`temporarily_unavailable`, which Entra ID sends from its token endpoint),
// or one refusing the gateway's own client credentials (`invalid_client`: a client secret rotated
// at one end before the other) signed out every person whose ID token came due meanwhile: 401
// session_expired, "the provider no longer vouches for this session". None of these says anything
// about the person; docs/people.md promises a provider that cannot serve keeps the session (503).
// Only the provider's refusal of the grant itself (`invalid_grant`: revoked, expired) ends it.
// The real provider (oidc-provider), stood in for on its port by a server answering as a
// rate-limiting or busy one would; the gateway's client secret changed by a config reload.
import { once } from 'node:events'
import { createServer } from 'node:http'
import { request } from 'undici'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { sessionId } from '../../src/identity/index.ts'
import { closeAll } from '../helpers/browser.ts'
import { cookieJar, submitLogin, type CookieJarClient } from '../helpers/cookie-jar.ts'
import { heldPort } from '../helpers/faults.ts'
import type { TestGateway } from '../helpers/gateway.ts'
import type { TestIdentityProvider } from '../helpers/identity-provider.ts'
import { ALICE, analystsMayGet, SCOPES_WITH_GROUPS, sessionRoute, signInConfig, startSignInGateway, startSignInProvider, WEB_CLIENT } from '../helpers/sign-in.ts'
import { startUpstream, type TestUpstream } from '../helpers/upstream.ts'

const ADMIN_TOKEN = 'sign-in-probe-refresh-trouble-admin-0123456789'

let idp: TestIdentityProvider
let upstream: TestUpstream
let gateway: TestGateway

function config(clientSecret: string): Record<string, unknown> {
  return {
    admin: { token: ADMIN_TOKEN },
    ...signInConfig(idp, { scopes: [...SCOPES_WITH_GROUPS, 'offline_access'], client_secret: clientSecret, session: { store: 'memory' } }),
    ...analystsMayGet(),
    ...sessionRoute(upstream.url),
  }
}

beforeAll(async () => {
  upstream = await startUpstream()
  const held = await heldPort()
  idp = await startSignInProvider(held.port, { people: [ALICE] })
  gateway = await startSignInGateway(config(WEB_CLIENT.secret), { port: held })
}, 60_000)

afterAll(() => closeAll(gateway, upstream, idp))

/** A signed-in browser whose session's ID token is due for a refresh now. */
async function signedInDue(): Promise<{ client: CookieJarClient; id: string }> {
  const client = cookieJar()
  const toLogin = await client.follow(`${gateway.url}/people/start`)
  const loggedIn = await submitLogin(client, toLogin.reply!, ALICE.username, ALICE.password)
  const back = await client.follow(loggedIn.location!)
  expect(back.reply?.status).toBe(200)
  const id = sessionId(client.cookies(gateway.url).bouncer_session!)
  const store = gateway.state.runtime.signIn!.store
  const record = (await store.get(id))!
  expect(record.refreshAt).not.toBeNull() // the provider gave a refresh token
  await store.update({ ...record, refreshAt: Date.now() - 1_000 })
  return { client, id }
}

/** Runs `meanwhile` while the provider's token endpoint answers `status` with `body` (the provider stood in for on its port). */
async function whileTokenEndpointAnswers(status: number, body: object, meanwhile: () => Promise<void>): Promise<void> {
  await idp.stop()
  const standIn = createServer((req, res) => {
    req.resume()
    res.writeHead(req.method === 'POST' ? status : 404, { 'content-type': 'application/json', 'cache-control': 'no-store' })
    res.end(JSON.stringify(body))
  })
  standIn.listen(idp.port, '127.0.0.1')
  await once(standIn, 'listening')
  try {
    await meanwhile()
  } finally {
    standIn.closeAllConnections()
    standIn.close()
    await once(standIn, 'close')
    await idp.restart(idp.keys)
  }
}

describe('a refresh the provider cannot serve keeps the session (503), only a refused grant ends it', { timeout: 120_000 }, () => {
  for (const [what, status, body] of [
    ['rate-limited (429 too_many_requests)', 429, { error: 'too_many_requests', error_description: 'Global limit has been reached' }],
    ['too busy (400 temporarily_unavailable)', 400, { error: 'temporarily_unavailable', error_description: 'The server is temporarily too busy' }],
  ] as const) {
    it(`the provider ${what}: 503 with Retry-After, the session kept, and it refreshes once the provider is back`, async () => {
      const { client, id } = await signedInDue()
      await whileTokenEndpointAnswers(status, body, async () => {
        const busy = await client.request(`${gateway.url}/people/report`, { html: false })
        expect(busy.status, busy.body).toBe(503)
        expect(JSON.parse(busy.body)).toMatchObject({ code: 'identity_provider_unavailable' })
        expect(busy.headers['retry-after']).toBeDefined()
        expect(await gateway.state.runtime.signIn!.store.get(id)).toBeDefined()
      })
      const back = await client.request(`${gateway.url}/people/report`, { html: false })
      expect(back.status, back.body).toBe(200)
    })
  }

  it('the provider refusing the gateway\'s client secret (invalid_client): 503 naming the client credentials, at a refresh and at a callback; no one signed out', async () => {
    const { client, id } = await signedInDue()
    const reload = async () => {
      const res = await request(`${gateway.adminUrl}/api/reload`, { method: 'POST', headers: { authorization: `Bearer ${ADMIN_TOKEN}` } })
      expect(res.statusCode, await res.body.text()).toBe(200)
    }
    await gateway.writeConfig(config('a-secret-the-provider-does-not-know-yet'))
    await reload()
    try {
      const refused = await client.request(`${gateway.url}/people/report`, { html: false })
      expect(refused.status, refused.body).toBe(503)
      expect(JSON.parse(refused.body)).toMatchObject({ code: 'identity_provider_unavailable', detail: expect.stringContaining('client_secret') })
      expect(await gateway.state.runtime.signIn!.store.get(id)).toBeDefined()
      // A new sign-in's code: not "invalid, expired or already used (a replayed callback)".
      const other = cookieJar()
      const toLogin = await other.follow(`${gateway.url}/people/start`)
      const loggedIn = await submitLogin(other, toLogin.reply!, ALICE.username, ALICE.password)
      const callback = await other.follow(loggedIn.location!)
      expect(callback.reply?.status, callback.reply?.body).toBe(503)
      expect(JSON.parse(callback.reply!.body)).toMatchObject({ code: 'identity_provider_unavailable', detail: expect.stringContaining('invalid_client') })
    } finally {
      await gateway.writeConfig(config(WEB_CLIENT.secret))
      await reload()
    }
    const back = await client.request(`${gateway.url}/people/report`, { html: false })
    expect(back.status, back.body).toBe(200)
  })

  it('the provider refusing the refresh token itself (invalid_grant) still ends the session', async () => {
    const { client, id } = await signedInDue()
    await whileTokenEndpointAnswers(400, { error: 'invalid_grant', error_description: 'grant request is invalid' }, async () => {
      const ended = await client.request(`${gateway.url}/people/report`, { html: false })
      expect(ended.status, ended.body).toBe(401)
      expect(JSON.parse(ended.body)).toMatchObject({ code: 'session_expired' })
    })
    expect(await gateway.state.runtime.signIn!.store.get(id)).toBeUndefined()
  })
})
