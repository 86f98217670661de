// A sign-out deleted the session and left its refresh token good at the provider until it expired:
// whoever had read the sessions' store (a backup, a replica) could still mint the person's tokens.
// The sign-out now revokes it at the provider's revocation_endpoint (RFC 7009). The provider is
// oidc-provider; the refresh token is read as the store holds it, opened with the session's cookie.
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { request } from 'undici'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { sessionId } from '../../src/identity/index.ts'
import { openTokens } from '../../src/identity/sessions/seal.ts'
import { cookieJar, submitLogin, type CookieJarClient } from '../helpers/cookie-jar.ts'
import { heldPort } from '../helpers/faults.ts'
import type { TestGateway } from '../helpers/gateway.ts'
import type { TestIdentityProvider } from '../helpers/identity-provider.ts'
import { ALICE, SCOPES_WITH_GROUPS, signInConfig, startSignInGateway, startSignInProvider, WEB_CLIENT } from '../helpers/sign-in.ts'
import { startUpstream, type TestUpstream } from '../helpers/upstream.ts'
import { waitFor } from '../helpers/wait.ts'

let dir: string
let idp: TestIdentityProvider
let upstream: TestUpstream
let gateway: TestGateway

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'sign-out-revokes-'))
  upstream = await startUpstream()
  const held = await heldPort()
  idp = await startSignInProvider(held.port, { people: [ALICE], afterSignOut: '/' })
  gateway = await startSignInGateway({
    ...signInConfig(idp, { scopes: SCOPES_WITH_GROUPS, session: { store: { type: 'sqlite', path: join(dir, 'sessions.db') } } }),
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
  await rm(dir, { recursive: true, force: true })
})

/** Signs Alice in; the session's cookie value and the refresh token the store keeps sealed under it. */
async function signIn(client: CookieJarClient): Promise<{ cookie: string; refreshToken: string }> {
  const toLogin = await client.follow(`${gateway.url}/app/x`)
  expect(toLogin.reply?.status, toLogin.reply?.body).toBe(200)
  const loggedIn = await submitLogin(client, toLogin.reply!, ALICE.username, ALICE.password)
  expect(loggedIn.status, loggedIn.body).toBe(303)
  const landed = await client.follow(loggedIn.location!)
  expect(landed.reply?.status).toBe(200)
  const cookie = client.cookies(gateway.url).bouncer_session as string
  const record = await gateway.state.runtime.signIn!.store.get(sessionId(cookie))
  const refreshToken = openTokens(record?.sealed ?? null, cookie)?.refreshToken
  expect(refreshToken, 'the provider gave the session a refresh token').toEqual(expect.any(String))
  return { cookie, refreshToken: refreshToken as string }
}

/** The gateway's log records whose message contains `text`. */
function logLines(text: string): Array<Record<string, unknown>> {
  return gateway.logs.join('').split('\n').filter((line) => line.includes(text)).map((line) => JSON.parse(line) as Record<string, unknown>)
}

/** The provider's answer to a refresh grant with the token, as the gateway's client would send it. */
async function refreshGrant(refreshToken: string): Promise<{ status: number; error?: string }> {
  const res = await request(`${idp.issuer}/token`, {
    method: 'POST',
    headers: { authorization: `Basic ${Buffer.from(`${WEB_CLIENT.clientId}:${WEB_CLIENT.secret}`).toString('base64')}`, 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams({ grant_type: 'refresh_token', refresh_token: refreshToken }).toString(),
  })
  const body = (await res.body.json()) as { error?: string }
  return { status: res.statusCode, ...(body.error === undefined ? {} : { error: body.error }) }
}

describe('sign-out and the provider\'s refresh token', () => {
  it('a sign-out revokes the session\'s refresh token at the provider: a refresh grant with it is refused', async () => {
    const client = cookieJar()
    const { refreshToken } = await signIn(client)
    const out = await client.request(`${gateway.url}/.bouncer/sign_out`, { method: 'POST', headers: { origin: gateway.url } })
    expect(out.status).toBe(302)
    expect(client.cookies(gateway.url).bouncer_session).toBeUndefined()
    // The revocation goes on after the answer (a provider that holds it does not hold the sign-out).
    await waitFor(() => logLines('revoked at the provider').length === 1, 'the revocation at the provider')
    expect(await refreshGrant(refreshToken)).toEqual({ status: 400, error: 'invalid_grant' })
  })

  it('a session ended otherwise (revoked by an operator) keeps it: the store cannot open it without the cookie', async () => {
    // The control: without a sign-out, the same kind of token is good at the provider.
    const { cookie, refreshToken } = await signIn(cookieJar())
    await gateway.state.runtime.signIn!.store.delete(sessionId(cookie))
    expect((await refreshGrant(refreshToken)).status).toBe(200)
  })

  it('a provider that cannot be reached at sign-out: the person is signed out all the same, and the log says the token stays good', async () => {
    const client = cookieJar()
    await signIn(client)
    await idp.stop()
    try {
      const out = await client.request(`${gateway.url}/.bouncer/sign_out`, { method: 'POST', headers: { origin: gateway.url } })
      expect(out.status).toBe(302)
      expect(client.cookies(gateway.url).bouncer_session).toBeUndefined()
      const again = await client.request(`${gateway.url}/app/x`, { html: false })
      expect(again.status).toBe(401)
      await waitFor(() => logLines('could not be revoked at the provider').length === 1, 'the failed revocation\'s log line')
      expect(logLines('could not be revoked at the provider')).toEqual([expect.objectContaining({ level: 'warn', msg: 'the signed-out session\'s refresh token could not be revoked at the provider: it stays good there until it expires' })])
    } finally {
      await idp.restart()
    }
  })
})
