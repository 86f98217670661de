// Found by the people probe: a reload that shortens sign_in.session.ttl (a security review: 8h
// becomes 1h) left every session signed in before it to its old absolute end. The idle timeout a
// reload sets applies to every session at once (docs/people.md: the store is kept, "a changed idle
// included"); the lifetime did not: a session older than the new ttl went on working for hours,
// and when it did end, its refusal named the new lifetime ("it reached its 1s lifetime") after it
// had lasted the old one. Now a session ends at the earlier of its own end and its sign-in plus the
// ttl configured now. A real provider and sign-in; the memory store, kept across the reload.
import { request } from 'undici'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { sessionId } from '../../src/identity/index.ts'
import { closeAll } from '../helpers/browser.ts'
import { cookieJar, submitLogin, type CookieJarClient } from '../helpers/cookie-jar.ts'
import { heldPort } from '../helpers/faults.ts'
import type { TestGateway } from '../helpers/gateway.ts'
import type { TestIdentityProvider } from '../helpers/identity-provider.ts'
import { ALICE, analystsMayGet, SCOPES_WITH_GROUPS, sessionRoute, signInConfig, startSignInGateway, startSignInProvider } from '../helpers/sign-in.ts'
import { startUpstream, type TestUpstream } from '../helpers/upstream.ts'
import { waitFor } from '../helpers/wait.ts'

const ADMIN_TOKEN = 'sign-in-probe-ttl-reload-admin-0123456789'

let idp: TestIdentityProvider
let upstream: TestUpstream
let gateway: TestGateway

function config(ttl: string): Record<string, unknown> {
  return {
    admin: { token: ADMIN_TOKEN },
    ...signInConfig(idp, { scopes: SCOPES_WITH_GROUPS, session: { store: 'memory', ttl, idle: '1h' } }),
    ...analystsMayGet(),
    ...sessionRoute(upstream.url),
  }
}

async function reloadWith(ttl: string): Promise<void> {
  await gateway.writeConfig(config(ttl))
  const res = await request(`${gateway.adminUrl}/api/reload`, { method: 'POST', headers: { authorization: `Bearer ${ADMIN_TOKEN}` } })
  expect(res.statusCode, await res.body.text()).toBe(200)
}

beforeAll(async () => {
  upstream = await startUpstream()
  const held = await heldPort()
  idp = await startSignInProvider(held.port, { people: [ALICE] })
  gateway = await startSignInGateway(config('8h'), { port: held })
}, 60_000)

afterAll(() => closeAll(gateway, upstream, idp))

async function signedIn(): Promise<CookieJarClient> {
  const client = cookieJar()
  const toLogin = await client.follow(`${gateway.url}/people/start`)
  const loggedIn = await submitLogin(client, toLogin.reply!, ALICE.username, ALICE.password)
  const back = await client.follow(loggedIn.location!)
  expect(back.reply?.status, back.reply?.body).toBe(200)
  return client
}

describe('a reload that shortens session.ttl', { timeout: 60_000 }, () => {
  it('ends the sessions already older than the new ttl (401 session_expired), as a changed idle does', async () => {
    await reloadWith('8h')
    const client = await signedIn()
    const id = sessionId(client.cookies(gateway.url).bouncer_session!)
    const signedInAt = (await gateway.state.runtime.signIn!.store.get(id))!.createdAt
    await waitFor(() => Date.now() > signedInAt + 2_000, 'the session to be older than the new ttl')
    await reloadWith('2s')
    try {
      const refused = await client.request(`${gateway.url}/people/report`, { html: false })
      expect(refused.status, refused.body).toBe(401)
      expect(JSON.parse(refused.body)).toMatchObject({ code: 'session_expired', detail: expect.stringContaining('2s lifetime') })
      expect(await gateway.state.runtime.signIn!.store.get(id)).toBeUndefined()
    } finally {
      await reloadWith('8h')
    }
  })

  it('keeps a session younger than the new ttl; a longer ttl lengthens none', async () => {
    await reloadWith('8h')
    const client = await signedIn()
    await reloadWith('1h')
    expect((await client.request(`${gateway.url}/people/report`, { html: false })).status).toBe(200)
    const id = sessionId(client.cookies(gateway.url).bouncer_session!)
    const record = (await gateway.state.runtime.signIn!.store.get(id))!
    expect(record.expiresAt).toBe(record.createdAt + 8 * 3_600_000) // its own end, as its cookie's Max-Age says
    await reloadWith('8h')
  })
})
