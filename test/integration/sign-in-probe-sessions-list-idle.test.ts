// Found by the people probe: GET /api/sessions and `bouncer sessions list` promise "the live
// sessions", and listed sessions that had ended by their idle timeout: every store's list looked at
// the absolute end only. Memory and SQLite drop an idle session at their minute's sweep, so it was
// listed up to a minute after its cookie stopped working; Redis keeps its key to the absolute end,
// so an idle-ended session was listed, "expires" hours ahead, for the rest of its ttl: an operator
// asking whether a person is still signed in anywhere was told yes. Now each store lists only
// sessions whose cookie still works. A real provider and sign-in; SQLite in a file, the shared Redis.
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { request } from 'undici'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { sessionId } from '../../src/identity/index.ts'
import { cookieJar, submitLogin } from '../helpers/cookie-jar.ts'
import { heldPort } from '../helpers/faults.ts'
import type { TestGateway } from '../helpers/gateway.ts'
import type { TestIdentityProvider } from '../helpers/identity-provider.ts'
import { uniquePrefix } from '../helpers/redis.ts'
import { ALICE, analystsMayGet, type HeldPort, SCOPES_WITH_GROUPS, sessionRoute, signInConfig, startSignInGateway, startSignInProvider } from '../helpers/sign-in.ts'
import { startUpstream, type TestUpstream } from '../helpers/upstream.ts'
import { waitFor } from '../helpers/wait.ts'

const ADMIN_TOKEN = 'sign-in-probe-sessions-list-idle-admin-0123456789'
const IDLE_MS = 1_500

let dir: string
let idp: TestIdentityProvider
let upstream: TestUpstream
const held: HeldPort[] = []
const gateways = new Map<string, TestGateway>()

const STORES: Array<[string, () => unknown]> = [
  ['memory', () => 'memory'],
  ['sqlite', () => ({ type: 'sqlite', path: join(dir, 'sessions.db') })],
  ['redis', () => ({ type: 'redis', url: 'redis://127.0.0.1:6379', prefix: uniquePrefix('sessions-list-idle') })],
]

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'sessions-list-idle-'))
  upstream = await startUpstream()
  for (let i = 0; i < STORES.length; i++) held.push(await heldPort())
  idp = await startSignInProvider(held.map((h) => h.port), { people: [ALICE] })
  for (const [i, [name, store]] of STORES.entries()) {
    gateways.set(name, await startSignInGateway({
      admin: { token: ADMIN_TOKEN },
      ...signInConfig(idp, { scopes: SCOPES_WITH_GROUPS, session: { store: store(), idle: `${IDLE_MS}ms` } }),
      ...analystsMayGet(),
      ...sessionRoute(upstream.url),
    }, { port: held[i] }))
  }
}, 60_000)

afterAll(async () => {
  for (const gateway of gateways.values()) await gateway.close()
  await upstream?.close()
  await idp?.stop()
  await rm(dir, { recursive: true, force: true })
})

async function listed(gateway: TestGateway): Promise<string[]> {
  const res = await request(`${gateway.adminUrl}/api/sessions`, { headers: { authorization: `Bearer ${ADMIN_TOKEN}` } })
  expect(res.statusCode).toBe(200)
  return ((await res.body.json()) as { id: string }[]).map((session) => session.id)
}

describe('GET /api/sessions lists only sessions whose cookie still works', { timeout: 60_000 }, () => {
  for (const [name] of STORES) {
    it(`${name}: a session past its idle timeout is no longer listed`, async () => {
      const gateway = gateways.get(name)!
      const client = cookieJar()
      const toLogin = await client.follow(`${gateway.url}/people/start`)
      const loggedIn = await submitLogin(client, toLogin.reply!, ALICE.username, ALICE.password)
      const back = await client.follow(loggedIn.location!)
      expect(back.reply?.status, back.reply?.body).toBe(200)
      const id = sessionId(client.cookies(gateway.url).bouncer_session!)
      expect(await listed(gateway)).toContain(id)

      const lastUse = Date.now()
      await waitFor(() => Date.now() > lastUse + IDLE_MS + 100, 'the session to go idle')
      // Listed before any request meets the cookie (such a request deletes the session it refuses).
      const afterIdle = await listed(gateway)
      const ended = await client.request(`${gateway.url}/people/report`, { html: false })
      expect(ended.status).toBe(401)
      expect(JSON.parse(ended.body)).toMatchObject({ code: 'session_expired', detail: expect.stringContaining('idle') })
      expect(afterIdle).not.toContain(id)
    })
  }
})
