// Found by the sessions probe: a session cookie the store knew, refused because its session had
// ended (past its ttl or idle, or its refresh token refused by the provider: the person disabled
// there), was audited as nobody's — subject, issuer and credential null — so `bouncer audit
// --principal alice` did not find a disabled person's browser still knocking, and the record
// contradicted SPEC's "the audit record says which credential". A revoked or expired API key, and
// an out-of-date client certificate, name their holder; a session the store holds is as proven
// (its cookie's hash names it). A cookie naming no session still names no one.
import { randomUUID } from 'node:crypto'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { request } from 'undici'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { sessionId } from '../../src/identity/index.ts'
import { openTokens } from '../../src/identity/sessions/seal.ts'
import { waitForAuditRecord } from '../helpers/audit.ts'
import { closeAll } from '../helpers/browser.ts'
import { cookieJar, submitLogin, type CookieJarClient } from '../helpers/cookie-jar.ts'
import { heldPort } from '../helpers/faults.ts'
import type { TestGateway } from '../helpers/gateway.ts'
import type { TestIdentityProvider } from '../helpers/identity-provider.ts'
import { ALICE, analystsMayGet, SCOPES_WITH_GROUPS, sessionRoute, signInConfig, startSignInGateway, startSignInProvider, WEB_CLIENT } from '../helpers/sign-in.ts'
import { startUpstream, type TestUpstream } from '../helpers/upstream.ts'

let dir: string
let auditDb: string
let idp: TestIdentityProvider
let upstream: TestUpstream
let gateway: TestGateway

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'sessions-probe-ended-audit-'))
  auditDb = join(dir, 'audit.db')
  upstream = await startUpstream()
  const held = await heldPort()
  idp = await startSignInProvider(held.port, { people: [ALICE] })
  gateway = await startSignInGateway({
    audit: { sinks: [{ type: 'sqlite', path: auditDb }], spill_dir: join(dir, 'spill'), flush_interval: '20ms' },
    ...signInConfig(idp, { scopes: [...SCOPES_WITH_GROUPS, 'offline_access'], session: { store: 'memory' } }),
    ...analystsMayGet(),
    ...sessionRoute(upstream.url),
  }, { port: held })
}, 60_000)

afterAll(() => closeAll(gateway, upstream, idp, () => rm(dir, { recursive: true, force: true })))

/** A signed-in browser, and its session's id and cookie. */
async function signedIn(): Promise<{ client: CookieJarClient; id: string; cookie: string }> {
  const client = cookieJar()
  const toLogin = await client.follow(`${gateway.url}/people/start`)
  const loggedIn = await submitLogin(client, toLogin.reply!, ALICE.username, ALICE.password)
  const back = await client.follow(loggedIn.location!)
  expect(back.reply?.status).toBe(200)
  const cookie = client.cookies(gateway.url).bouncer_session!
  return { client, id: sessionId(cookie), cookie }
}

/** The answer to `path` with the browser's cookie (a page load with `html`), and its audit record. */
async function audited(client: CookieJarClient, html: boolean) {
  const requestId = randomUUID()
  const reply = await client.request(`${gateway.url}/people/report`, { html, headers: { 'x-request-id': requestId } })
  return { reply, record: await waitForAuditRecord(auditDb, requestId) }
}

const store = () => gateway.state.runtime.signIn!.store

describe('the audit record of an ended session still in use names its person', { timeout: 60_000 }, () => {
  it('past its ttl: an API call, 401', async () => {
    const { client, id } = await signedIn()
    const record = (await store().get(id))!
    await store().update({ ...record, expiresAt: Date.now() - 1 })
    const call = await audited(client, false)
    expect(call.reply.status, call.reply.body).toBe(401)
    expect(call.record).toMatchObject({ code: 'session_expired', decision: 'deny', credential: 'session', issuer: idp.issuer, subject: 'alice', roles: [] })
  })

  it('idle past its timeout, on a page load: 302, and the record names alice', async () => {
    const { client, id } = await signedIn()
    const record = (await store().get(id))!
    await store().update({ ...record, lastSeenAt: Date.now() - 2 * 60 * 60_000, idleUntil: Date.now() - 60 * 60_000 })
    const load = await audited(client, true)
    expect(load.reply.status, load.reply.body).toBe(302)
    expect(load.record).toMatchObject({ status: 302, code: 'session_expired', credential: 'session', subject: 'alice' })
  })

  it('its refresh token revoked at the provider (the person disabled there): 401 at the refresh, and the record names alice', async () => {
    const { client, id, cookie } = await signedIn()
    const record = (await store().get(id))!
    const refreshToken = openTokens(record.sealed, cookie)?.refreshToken
    expect(refreshToken).toBeTruthy()
    const revoked = await request(`${idp.issuer}/token/revocation`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({ token: refreshToken!, token_type_hint: 'refresh_token', client_id: WEB_CLIENT.clientId, client_secret: WEB_CLIENT.secret }).toString(),
    })
    expect(revoked.statusCode, await revoked.body.text()).toBe(200)
    await store().update({ ...record, refreshAt: Date.now() - 1_000 })
    const call = await audited(client, false)
    expect(call.reply.status, call.reply.body).toBe(401)
    expect(JSON.parse(call.reply.body)).toMatchObject({ code: 'session_expired', detail: expect.stringContaining('no longer vouches') })
    expect(call.record).toMatchObject({ code: 'session_expired', credential: 'session', subject: 'alice' })
  })

  it('a cookie naming no session names no one', async () => {
    const client = cookieJar()
    client.setCookie(gateway.url, 'bouncer_session', 'A'.repeat(43))
    const call = await audited(client, false)
    expect(call.reply.status).toBe(401)
    expect(call.record).toMatchObject({ code: 'session_expired', subject: null, issuer: null })
    expect(call.record.credential ?? null).toBeNull()
  })
})
