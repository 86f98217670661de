// Found by the people probe: a session was never checked against the provider it was signed in
// at. After a reload that points sign_in at another provider (a move from one SSO to another, both
// in `issuers`), a session signed in at the old one went on working as a person of the new one: its
// claims, vouched for by the old provider, met the new issuer's trust rules (its subject, a name at
// another provider, possibly someone else's there), and when its ID token came due its refresh
// token, the old provider's credential, was sent to the new provider's token endpoint. Now a
// session made at another provider (another issuer entry, or the same name at another URL) is
// refused: 401 session_expired, a page load sent to sign in at the provider configured now. It is
// not deleted (another gateway sharing the store may be the one it belongs to): moved back, it works.
//
// Found by the sessions probe: signing out of such a session sent its tokens — the old provider's
// credentials — to the new provider: its refresh token to the new provider's revocation endpoint
// (logged "revoked at the provider", which it was not: a provider answers 200 for a token it never
// issued, RFC 7009 §2.2), and its ID token, in the browser's address bar, as the new provider's
// id_token_hint. The sign-out now ends it here and sends its tokens nowhere.
// Real providers (two oidc-providers), a real reload through the admin API.
import { request } from 'undici'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { sessionId } from '../../src/identity/index.ts'
import { closeAll } from '../helpers/browser.ts'
import { cookieJar, submitLogin, type CookieJarClient } from '../helpers/cookie-jar.ts'
import { heldPort } from '../helpers/faults.ts'
import { AUDIENCE, type TestIdentityProvider } from '../helpers/identity-provider.ts'
import { startTestGateway, type TestGateway } from '../helpers/gateway.ts'
import { ALICE, SCOPES_WITH_GROUPS, sessionRoute, startSignInProvider, WEB_CLIENT } from '../helpers/sign-in.ts'
import { startUpstream, type TestUpstream } from '../helpers/upstream.ts'
import { waitFor } from '../helpers/wait.ts'

const ADMIN_TOKEN = 'sign-in-probe-issuer-switch-admin-0123456789'

let oldIdp: TestIdentityProvider
let newIdp: TestIdentityProvider
let upstream: TestUpstream
let gateway: TestGateway

/** Both providers in `issuers`, sign_in through `signInIssuer`; with `repointed`, only `old-sso`, its URL the new provider's. */
function config(signInIssuer: 'old-sso' | 'new-sso', repointed = false): Record<string, unknown> {
  const issuers = repointed
    ? [{ name: 'old-sso', issuer: newIdp.issuer, audiences: [AUDIENCE] }]
    : [{ name: 'old-sso', issuer: oldIdp.issuer, audiences: [AUDIENCE] }, { name: 'new-sso', issuer: newIdp.issuer, audiences: [AUDIENCE] }]
  return {
    admin: { token: ADMIN_TOKEN },
    issuers,
    sign_in: { issuer: signInIssuer, client_id: WEB_CLIENT.clientId, client_secret: WEB_CLIENT.secret, scopes: [...SCOPES_WITH_GROUPS, 'offline_access'], session: { store: 'memory' } },
    roles: [{ name: 'analysts', assumed_by: issuers.map((entry) => ({ issuer: entry.name, claims: { groups: 'analysts' } })), policies: ['apps'] }],
    policies: [{ name: 'apps', statements: [{ sid: 'Apps', effect: 'allow', actions: ['GET'], routes: ['*'] }] }],
    ...sessionRoute(upstream.url),
  }
}

async function reloadWith(next: Record<string, unknown>): Promise<void> {
  await gateway.writeConfig(next)
  const res = await request(`${gateway.adminUrl}/api/reload`, { method: 'POST', headers: { authorization: `Bearer ${ADMIN_TOKEN}` } })
  expect(res.statusCode, await res.body.text()).toBe(200)
}

beforeAll(async () => {
  upstream = await startUpstream()
  const held = await heldPort()
  oldIdp = await startSignInProvider(held.port, { people: [ALICE], afterSignOut: '/' })
  newIdp = await startSignInProvider(held.port, { people: [ALICE], afterSignOut: '/' })
  await held.release()
  gateway = await startTestGateway(config('old-sso'), { port: held.port })
  for (const name of ['old-sso', 'new-sso']) await waitFor(() => gateway.state.runtime.issuerKeys.get(name)?.state === 'ready', `${name}'s keys`)
}, 60_000)

afterAll(() => closeAll(gateway, upstream, oldIdp, newIdp))

/** Alice signed in at the old provider; with `due`, her session's ID token due for a refresh. */
async function signedInAtOld(due: boolean): Promise<CookieJarClient> {
  const client = cookieJar()
  const toLogin = await client.follow(`${gateway.url}/people/start`)
  expect(toLogin.chain[1]).toContain(oldIdp.issuer)
  const loggedIn = await submitLogin(client, toLogin.reply!, ALICE.username, ALICE.password)
  const back = await client.follow(loggedIn.location!)
  expect(back.reply?.status, back.reply?.body).toBe(200)
  if (due) {
    const store = gateway.state.runtime.signIn!.store
    const id = sessionId(client.cookies(gateway.url).bouncer_session!)
    const record = (await store.get(id))!
    await store.update({ ...record, refreshAt: Date.now() - 1_000 })
  }
  return client
}

describe('a session signed in at another provider than sign_in names now', { timeout: 120_000 }, () => {
  it('after sign_in moves to another issuer entry: 401 session_expired, and the old provider\'s refresh token goes nowhere', async () => {
    await reloadWith(config('old-sso'))
    const notDue = await signedInAtOld(false)
    const due = await signedInAtOld(true)
    await reloadWith(config('new-sso'))
    try {
      // Its claims, the old provider's word, are no person of the new one's.
      const api = await notDue.request(`${gateway.url}/people/report`, { html: false })
      expect(api.status, api.body).toBe(401)
      expect(JSON.parse(api.body)).toMatchObject({ code: 'session_expired', detail: expect.stringContaining('another provider') })
      const page = await notDue.request(`${gateway.url}/people/report`)
      expect(page.status).toBe(302)
      expect(page.location).toContain(newIdp.issuer)
      // Its refresh token is the old provider's: not sent to the new one.
      const askedNew = newIdp.tokenRequests
      const refreshing = await due.request(`${gateway.url}/people/report`, { html: false })
      expect(refreshing.status, refreshing.body).toBe(401)
      expect(newIdp.tokenRequests).toBe(askedNew)
    } finally {
      await reloadWith(config('old-sso'))
    }
    // Back at the provider it was signed in at: it works again.
    expect((await notDue.request(`${gateway.url}/people/report`, { html: false })).status).toBe(200)
  })

  it('after the sign-in issuer entry keeps its name but names another provider\'s URL: the same', async () => {
    await reloadWith(config('old-sso'))
    const client = await signedInAtOld(true)
    await reloadWith(config('old-sso', true))
    try {
      const askedNew = newIdp.tokenRequests
      const api = await client.request(`${gateway.url}/people/report`, { html: false })
      expect(api.status, api.body).toBe(401)
      expect(JSON.parse(api.body)).toMatchObject({ code: 'session_expired' })
      expect(newIdp.tokenRequests).toBe(askedNew)
    } finally {
      await reloadWith(config('old-sso'))
    }
  })

  it('a session of the provider configured now still works, and refreshes', async () => {
    await reloadWith(config('old-sso'))
    const client = await signedInAtOld(true)
    const asked = oldIdp.tokenRequests
    const api = await client.request(`${gateway.url}/people/report`, { html: false })
    expect(api.status, api.body).toBe(200)
    expect(oldIdp.tokenRequests).toBeGreaterThan(asked)
  })
})

describe('signing out of a session made at the provider sign_in named before a reload', { timeout: 60_000 }, () => {
  it('ends it, and sends neither its refresh token nor its ID token to the provider configured now', async () => {
    await reloadWith(config('old-sso'))
    const client = await signedInAtOld(false)
    await reloadWith(config('new-sso'))
    const from = gateway.logs.length
    const copy = client.cookies(gateway.url).bouncer_session!
    try {
      const out = await client.request(`${gateway.url}/.bouncer/sign_out`, { method: 'POST', headers: { origin: gateway.url } })
      expect(out.status, out.body).toBe(302)
      // RP-initiated logout at the provider configured now, without the old provider's ID token.
      expect(out.location).toContain(newIdp.issuer)
      expect(new URL(out.location!).searchParams.get('id_token_hint')).toBeNull()
      // The refresh token's fate is logged once the answer is out: it must not have gone to the new provider.
      await waitFor(() => gateway.logs.slice(from).some((line) => line.includes('signed-out session\'s refresh token')), 'the log of the refresh token\'s fate', 10_000)
      const fate = gateway.logs.slice(from).find((line) => line.includes('signed-out session\'s refresh token'))!
      expect(fate).not.toContain('was revoked at the provider')
      expect(fate).toContain('old-sso')
      // The session is over: its cookie was cleared, and a copy of it is refused even once sign_in names its provider again.
      expect(client.cookies(gateway.url).bouncer_session).toBeUndefined()
    } finally {
      await reloadWith(config('old-sso'))
    }
    const thief = cookieJar()
    thief.setCookie(gateway.url, 'bouncer_session', copy)
    const replayed = await thief.request(`${gateway.url}/people/report`, { html: false })
    expect(replayed.status, replayed.body).toBe(401)
  })
})
