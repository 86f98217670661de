// Found by a probe: with server.workers: 2 a session whose ID token had expired was refreshed once
// per worker when a browser's parallel requests met both (2 refresh-token grants for 8 requests,
// 1 with one worker). A provider that rotates refresh tokens refuses the second use of one, and
// the session ended: 26 of 40 requests got 401 against such a provider. One refresh per session at
// once now holds across every process on the session store (SessionStore.claimRefresh).
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { ServeProcess } from '../helpers/cli.ts'
import { cookieJar, submitLogin } from '../helpers/cookie-jar.ts'
import type { Person, TestIdentityProvider } from '../helpers/identity-provider.ts'
import { SCOPES_WITH_GROUPS, signInConfig, startSignInProvider } from '../helpers/sign-in.ts'
import { startUpstream, type TestUpstream } from '../helpers/upstream.ts'
import { waitFor } from '../helpers/wait.ts'
import { onNewConnection as newConnection, serveWithWorkers } from '../helpers/workers.ts'

const ALICE: Person = { username: 'alice', password: 'alice-password-123', name: 'Alice', email: 'alice@example.com', groups: ['staff'] }

let dir: string
let upstream: TestUpstream
let idp: TestIdentityProvider
let gateway: ServeProcess

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'bouncer-workers-refresh-'))
  upstream = await startUpstream()
  ;({ gateway } = await serveWithWorkers(dir, async (port) => {
    idp = await startSignInProvider(port, { people: [ALICE], idTokenTtlSeconds: 3 })
    return {
      ...signInConfig(idp, { scopes: SCOPES_WITH_GROUPS, session: { store: { type: 'sqlite', path: join(dir, 'sessions.db') } } }),
      roles: [{ name: 'staff', assumed_by: [{ issuer: 'sso', claims: { groups: 'staff' } }], policies: ['all'] }],
      policies: [{ name: 'all', statements: [{ sid: 'All', effect: 'allow', actions: ['GET'], routes: ['app'] }] }],
      upstreams: [{ name: 'app', url: upstream.url }],
      routes: [{ id: 'app', path: '/app/*', upstream: 'app', accept: ['session'] }],
    }
  }))
}, 120_000)

afterAll(async () => {
  await gateway?.stop('SIGKILL')
  await upstream?.close()
  await idp?.stop()
  await rm(dir, { recursive: true, force: true })
})

/** One request with the session cookie on a connection of its own: the kernel picks a worker for each. */
const onNewConnection = async (cookie: string) => (await newConnection(`${gateway.url}/app/x`, { headers: { cookie } })).status

describe('server.workers: a session refreshed by one worker at a time', () => {
  it('parallel requests on both workers after the ID token expired make one refresh grant, and every one is served', async () => {
    for (let round = 0; round < 2; round++) {
      const browser = cookieJar()
      const toLogin = await browser.follow(`${gateway.url}/app/home`)
      const loggedIn = await submitLogin(browser, toLogin.reply!, ALICE.username, ALICE.password)
      await browser.follow(loggedIn.location!)
      const signedInAt = Date.now()
      const cookie = `bouncer_session=${browser.cookies(gateway.url).bouncer_session}`
      await waitFor(() => Date.now() > signedInAt + 3_500, 'the ID token to expire', 10_000)
      const before = idp.tokenRequests
      const statuses = await Promise.all(Array.from({ length: 8 }, () => onNewConnection(cookie)))
      expect(statuses).toEqual(Array(8).fill(200))
      expect(idp.tokenRequests - before, `round ${round}`).toBe(1)
    }
  }, 60_000)
})
