// Found by an adversarial probe (helper): a session revoked (admin API) or signed out while its claims were being refreshed at the provider was written back when the refresh answered (the store's put is an upsert), and its cookie worked again.
import { once } from 'node:events'
import { mkdtemp, rm } from 'node:fs/promises'
import { createServer, type ServerResponse } from 'node:http'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { request } from 'undici'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { sessionId } from '../../src/identity/index.ts'
import { cookieJar, submitLogin, type CookieJarClient } from '../helpers/cookie-jar.ts'
import { heldPort } from '../helpers/faults.ts'
import type { TestGateway } from '../helpers/gateway.ts'
import type { TestIdentityProvider } from '../helpers/identity-provider.ts'
import { ALICE, SCOPES_WITH_GROUPS, signInConfig, startSignInGateway, startSignInProvider } from '../helpers/sign-in.ts'
import { startUpstream, type TestUpstream } from '../helpers/upstream.ts'
import { waitFor } from '../helpers/wait.ts'

const ADMIN_TOKEN = 'session-refresh-ended-admin-token-0123456789'
const ADMIN = { authorization: `Bearer ${ADMIN_TOKEN}` }
/** The ID tokens' lifetime: each test waits it out (and half a second more) to make the next request refresh. */
const ID_TOKEN_TTL_S = 2

let dir: string
let idp: TestIdentityProvider
let upstream: TestUpstream
let gateway: TestGateway

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'session-refresh-ended-'))
  upstream = await startUpstream()
  const held = await heldPort()
  idp = await startSignInProvider(held.port, { people: [ALICE], idTokenTtlSeconds: ID_TOKEN_TTL_S, afterSignOut: '/' })
  gateway = await startSignInGateway({
    admin: { token: ADMIN_TOKEN },
    ...signInConfig(idp, { scopes: SCOPES_WITH_GROUPS, session: { store: { type: 'sqlite', path: join(dir, 'sessions.db') } } }),
    roles: [{ name: 'analysts', assumed_by: [{ issuer: 'sso', claims: { groups: 'analysts' } }], policies: ['rw'] }],
    policies: [{ name: 'rw', statements: [{ sid: 'App', effect: 'allow', actions: ['GET', 'POST'], routes: ['app'] }] }],
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

async function signIn(client: CookieJarClient, path: string) {
  const toLogin = await client.follow(`${gateway.url}${path}`)
  expect(toLogin.reply?.status, toLogin.reply?.body).toBe(200)
  const loggedIn = await submitLogin(client, toLogin.reply!, ALICE.username, ALICE.password)
  expect(loggedIn.status, loggedIn.body).toBe(303)
  return client.follow(loggedIn.location!)
}

/**
 * Runs `meanwhile` while `count` refresh grants are held at the provider (its token endpoint
 * answers only afterwards, with fresh tokens): the window in which a session can end under a refresh.
 */
async function withRefreshesHeld(count: number, start: () => Promise<unknown>[], meanwhile: () => Promise<void>): Promise<void> {
  await idp.stop()
  const held: ServerResponse[] = []
  const slow = createServer((req, res) => {
    req.resume()
    if (req.method === 'POST') held.push(res)
    else res.writeHead(404).end()
  })
  slow.listen(idp.port, '127.0.0.1')
  await once(slow, 'listening')
  try {
    const inFlight = start()
    await waitFor(() => held.length === count, 'the refresh grants at the provider', 10_000)
    await meanwhile()
    for (const res of held) {
      res.writeHead(200, { 'content-type': 'application/json', 'cache-control': 'no-store' })
      res.end(JSON.stringify({ access_token: 'at', token_type: 'Bearer', expires_in: 300 }))
    }
    const answers = (await Promise.all(inFlight)) as { status: number; body: string }[]
    // The requests that were waiting on the refresh are refused as for an ended session.
    for (const answer of answers) {
      expect(answer.status, answer.body).toBe(401)
      expect(JSON.parse(answer.body)).toMatchObject({ code: 'session_expired' })
    }
  } finally {
    slow.close()
    // Every grant has been answered: the gateway's idle keep-alive connections are not waited out.
    slow.closeAllConnections()
    await once(slow, 'close')
    await idp.restart(idp.keys)
  }
}

describe('a session that ends while its refresh is at the provider', { timeout: 90_000 }, () => {
  it('stays ended, whether revoked (admin API) or signed out', async () => {
    const revoked = cookieJar()
    const signedOut = cookieJar()
    await signIn(revoked, '/app/one')
    await signIn(signedOut, '/app/two')
    const revokedId = sessionId(revoked.cookies(gateway.url).bouncer_session!)
    const signedOutValue = signedOut.cookies(gateway.url).bouncer_session!
    const signedInAt = Date.now()
    await waitFor(() => Date.now() > signedInAt + ID_TOKEN_TTL_S * 1_000 + 500, 'the ID tokens to expire', 10_000)

    await withRefreshesHeld(
      2,
      () => [revoked.request(`${gateway.url}/app/one`, { html: false }), signedOut.request(`${gateway.url}/app/two`, { html: false })],
      async () => {
        const deleted = await request(`${gateway.adminUrl}/api/sessions/${revokedId}`, { method: 'DELETE', headers: ADMIN })
        await deleted.body.dump()
        expect(deleted.statusCode).toBe(200)
        const out = await signedOut.request(`${gateway.url}/.bouncer/sign_out`, { method: 'POST', headers: { origin: gateway.url } })
        expect(out.status).toBe(302)
      },
    )

    const after = await revoked.request(`${gateway.url}/app/one`, { html: false })
    expect(after.status).toBe(401)
    expect(JSON.parse(after.body)).toMatchObject({ code: 'session_expired' })
    const thief = await cookieJar().request(`${gateway.url}/app/two`, { html: false, headers: { cookie: `bouncer_session=${signedOutValue}` } })
    expect(thief.status).toBe(401)
    const listed = (await (await request(`${gateway.adminUrl}/api/sessions`, { headers: ADMIN })).body.json()) as { id: string }[]
    expect(listed.map((s) => s.id)).not.toContain(revokedId)
    expect(listed.map((s) => s.id)).not.toContain(sessionId(signedOutValue))
  })

  it('signed out during the refresh: the old cookie, kept by a thief, is refused afterwards', async () => {
    const person = cookieJar()
    await signIn(person, '/app/three')
    const value = person.cookies(gateway.url).bouncer_session!
    const signedInAt = Date.now()
    await waitFor(() => Date.now() > signedInAt + ID_TOKEN_TTL_S * 1_000 + 500, 'the ID token to expire', 10_000)

    await withRefreshesHeld(
      1,
      () => [person.request(`${gateway.url}/app/three`, { html: false })],
      async () => {
        const out = await request(`${gateway.url}/.bouncer/sign_out`, { method: 'POST', headers: { cookie: `bouncer_session=${value}`, origin: gateway.url } })
        await out.body.dump()
        expect(out.statusCode).toBe(302)
      },
    )

    const replay = await request(`${gateway.url}/app/three`, { headers: { cookie: `bouncer_session=${value}` } })
    await replay.body.dump()
    expect(replay.statusCode).toBe(401)
  })

  it('a refresh with no session ended under it still keeps the session', async () => {
    const person = cookieJar()
    await signIn(person, '/app/four')
    const before = idp.tokenRequests
    const signedInAt = Date.now()
    await waitFor(() => Date.now() > signedInAt + ID_TOKEN_TTL_S * 1_000 + 500, 'the ID token to expire', 10_000)
    const refreshed = await person.request(`${gateway.url}/app/four`, { html: false })
    expect(refreshed.status, refreshed.body).toBe(200)
    expect(idp.tokenRequests).toBeGreaterThan(before)
    expect((await person.request(`${gateway.url}/app/four`, { html: false })).status).toBe(200)
  })
})
