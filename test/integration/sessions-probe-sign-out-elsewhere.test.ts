// Found by the sessions probe: signing out of a session made at another provider than sign_in
// names now (a reload moved sign_in from one SSO to another) sent that session's tokens — the
// old provider's credentials — to the new provider: its refresh token to the new provider's
// revocation endpoint (logged "revoked at the provider", which it was not: a provider answers 200
// for a token it never issued, RFC 7009 §2.2), and its ID token, in the browser's address bar, as
// the new provider's id_token_hint. The requests such a session makes were already refused for
// this reason (sign-in-probe-issuer-switch); the sign-out now ends it here and sends its tokens
// nowhere. Two real providers (oidc-provider), a real reload through the admin API.
import { request } from 'undici'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { closeAll } from '../helpers/browser.ts'
import { cookieJar, submitLogin } from '../helpers/cookie-jar.ts'
import { heldPort } from '../helpers/faults.ts'
import { AUDIENCE, type TestIdentityProvider } from '../helpers/identity-provider.ts'
import { startTestGateway, type TestGateway } from '../helpers/gateway.ts'
import { ALICE, SCOPES_WITH_GROUPS, sessionRoute, startSignInProvider, WEB_CLIENT } from '../helpers/sign-in.ts'
import { startUpstream, type TestUpstream } from '../helpers/upstream.ts'
import { waitFor } from '../helpers/wait.ts'

const ADMIN_TOKEN = 'sessions-probe-sign-out-elsewhere-admin-0123456789'

let oldIdp: TestIdentityProvider
let newIdp: TestIdentityProvider
let upstream: TestUpstream
let gateway: TestGateway

function config(signInIssuer: 'old-sso' | 'new-sso'): Record<string, unknown> {
  const issuers = [{ name: 'old-sso', issuer: oldIdp.issuer, audiences: [AUDIENCE] }, { name: 'new-sso', issuer: newIdp.issuer, audiences: [AUDIENCE] }]
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

describe('signing out of a session made at the provider sign_in named before a reload', { timeout: 60_000 }, () => {
  it('ends it, and sends neither its refresh token nor its ID token to the provider configured now', async () => {
    const client = cookieJar()
    const toLogin = await client.follow(`${gateway.url}/people/start`)
    expect(toLogin.chain[1]).toContain(oldIdp.issuer)
    const loggedIn = await submitLogin(client, toLogin.reply!, ALICE.username, ALICE.password)
    expect((await client.follow(loggedIn.location!)).reply?.status).toBe(200)
    await reloadWith(config('new-sso'))
    const from = gateway.logs.length
    const copy = client.cookies(gateway.url).bouncer_session!

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
    await reloadWith(config('old-sso'))
    const thief = cookieJar()
    thief.setCookie(gateway.url, 'bouncer_session', copy)
    const replayed = await thief.request(`${gateway.url}/people/report`, { html: false })
    expect(replayed.status, replayed.body).toBe(401)
  })
})
