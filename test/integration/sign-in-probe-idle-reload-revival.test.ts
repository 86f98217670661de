// Found by an adversarial probe: a reload that lengthened sign_in.session.idle brought back
// sessions that had already ended by the idle timeout in force when they ended (idle 30m, unused
// for 40m: valid again once a reload set 60m), as long as the store had not deleted them yet:
// memory and SQLite sweep once a minute, Redis keeps an idle-ended key to its absolute end. The
// admin API listed them as live again too. Now a session that ended stays ended, and the longer
// timeout applies to the sessions still live at the reload. A gateway that opens the store after
// the reload (a restart, another instance) with the longer timeout refuses the ended session too:
// each session keeps its idle end, written with every use. A real provider and sign-in; SQLite in a
// file, the shared Redis.
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { request } from 'undici'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { sessionId } from '../../src/identity/index.ts'
import { closeAll } from '../helpers/browser.ts'
import { cookieJar, submitLogin, type CookieJarClient } from '../helpers/cookie-jar.ts'
import { heldPort } from '../helpers/faults.ts'
import type { TestGateway } from '../helpers/gateway.ts'
import type { TestIdentityProvider } from '../helpers/identity-provider.ts'
import { uniquePrefix } from '../helpers/redis.ts'
import { ALICE, analystsMayGet, type HeldPort, SCOPES_WITH_GROUPS, sessionRoute, signInConfig, startSignInGateway, startSignInProvider } from '../helpers/sign-in.ts'
import { startUpstream, type TestUpstream } from '../helpers/upstream.ts'
import { waitFor } from '../helpers/wait.ts'

const ADMIN_TOKEN = 'sign-in-probe-idle-reload-revival-admin-0123456789'
const IDLE_MS = 3_000

let dir: string
let idp: TestIdentityProvider
let upstream: TestUpstream
const held: HeldPort[] = []
const gateways = new Map<string, TestGateway>()
const later: TestGateway[] = []

const STORES: Array<[string, () => unknown]> = [
  ['memory', () => 'memory'],
  ['sqlite', () => ({ type: 'sqlite', path: join(dir, 'sessions.db') })],
  ['redis', () => ({ type: 'redis', url: 'redis://127.0.0.1:6379', prefix: uniquePrefix('idle-reload-revival') })],
]
const stores = new Map<string, unknown>()

function config(name: string, idle: string): Record<string, unknown> {
  return {
    admin: { token: ADMIN_TOKEN },
    ...signInConfig(idp, { scopes: SCOPES_WITH_GROUPS, session: { store: stores.get(name), idle } }),
    ...analystsMayGet(),
    ...sessionRoute(upstream.url),
  }
}

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'idle-reload-revival-'))
  upstream = await startUpstream()
  for (let i = 0; i < STORES.length; i++) held.push(await heldPort())
  idp = await startSignInProvider(held.map((h) => h.port), { people: [ALICE] })
  for (const [i, [name, store]] of STORES.entries()) {
    stores.set(name, store())
    gateways.set(name, await startSignInGateway(config(name, `${IDLE_MS}ms`), { port: held[i] }))
  }
}, 60_000)

afterAll(async () => {
  await closeAll(...later, ...gateways.values(), upstream, idp)
  await rm(dir, { recursive: true, force: true })
})

async function signedIn(gateway: TestGateway): Promise<CookieJarClient> {
  const client = cookieJar()
  const toLogin = await client.follow(`${gateway.url}/people/start`)
  const loggedIn = await submitLogin(client, toLogin.reply!, ALICE.username, ALICE.password)
  const back = await client.follow(loggedIn.location!)
  expect(back.reply?.status, back.reply?.body).toBe(200)
  return client
}

async function reloadWith(gateway: TestGateway, name: string, idle: string): Promise<void> {
  await gateway.writeConfig(config(name, idle))
  const res = await request(`${gateway.adminUrl}/api/reload`, { method: 'POST', headers: { authorization: `Bearer ${ADMIN_TOKEN}` } })
  expect(res.statusCode, await res.body.text()).toBe(200)
}

async function listed(gateway: TestGateway): Promise<string[]> {
  const res = await request(`${gateway.adminUrl}/api/sessions`, { headers: { authorization: `Bearer ${ADMIN_TOKEN}` } })
  expect(res.statusCode).toBe(200)
  return ((await res.body.json()) as { id: string }[]).map((session) => session.id)
}

/** What a script (no Accept: text/html) gets at `gateway` with this session cookie. */
async function withCookie(gateway: TestGateway, value: string): Promise<{ status: number; body: string }> {
  const res = await request(`${gateway.url}/people/report`, { headers: { cookie: `bouncer_session=${value}` } })
  return { status: res.statusCode, body: await res.body.text() }
}

describe('a reload that lengthens session.idle', { timeout: 60_000 }, () => {
  for (const [name] of STORES) {
    it(`${name}: a session idle past the old timeout stays ended; one still live at the reload takes the new timeout`, async () => {
      const gateway = gateways.get(name)!
      const ended = await signedIn(gateway)
      const live = await signedIn(gateway)
      const start = Date.now() // both last used before this
      const endedValue = ended.cookies(gateway.url).bouncer_session!
      const liveValue = live.cookies(gateway.url).bouncer_session!

      await waitFor(() => Date.now() > start + IDLE_MS / 2, 'half the idle timeout')
      const liveUsedAt = Date.now()
      expect((await live.request(`${gateway.url}/people/report`, { html: false })).status).toBe(200)
      await waitFor(() => Date.now() > start + IDLE_MS + 200, 'the first session to go idle')
      await reloadWith(gateway, name, '30s')
      // The second session was still live at the reload (a slow host would make this test meaningless).
      expect(Date.now()).toBeLessThan(liveUsedAt + IDLE_MS)

      // Listed before any request meets the ended cookie (a request deletes the session it refuses).
      const afterReload = await listed(gateway)
      expect(afterReload).toContain(sessionId(liveValue))
      expect(afterReload).not.toContain(sessionId(endedValue))

      if (name !== 'memory') {
        // A gateway that opens the shared store after the reload, with the longer timeout (a restart, another instance).
        const other = await startSignInGateway(config(name, '30s'))
        later.push(other)
        const there = await withCookie(other, endedValue)
        expect(there.status, there.body).toBe(401)
        expect(JSON.parse(there.body)).toMatchObject({ code: 'session_expired', detail: expect.stringContaining('idle') })
      }

      const refused = await withCookie(gateway, endedValue)
      expect(refused.status, refused.body).toBe(401)
      expect(JSON.parse(refused.body)).toMatchObject({ code: 'session_expired' })

      // Past the old timeout since its last use, within the new one: still signed in.
      await waitFor(() => Date.now() > liveUsedAt + IDLE_MS + 200, 'the live session to pass the old timeout')
      const kept = await withCookie(gateway, liveValue)
      expect(kept.status, kept.body).toBe(200)
    })
  }
})
