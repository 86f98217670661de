// Made-up session cookies are guesses: each well-formed one costs a session store read, so
// auth_failures counts a cookie that names no session (or is none the gateway makes) as it counts a
// forged token, at the gateway and at the admin console. Before, a flood of random cookies was
// never held back (a probe: every one answered 401 after its store read). A genuine session of
// another address goes on; a held address's is refused with the rest of its requests.
import { randomBytes } from 'node:crypto'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Agent, request } from 'undici'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { sessionId, type SessionAudience } from '../../src/identity/index.ts'
import { closedPort } from '../helpers/faults.ts'
import type { TestGateway } from '../helpers/gateway.ts'
import type { TestIdentityProvider } from '../helpers/identity-provider.ts'
import { signInConfig, startSignInGateway, startSignInProvider, UNUSED_ORIGIN } from '../helpers/sign-in.ts'
import { startUpstream, type TestUpstream } from '../helpers/upstream.ts'

let dir: string
let idp: TestIdentityProvider
let upstream: TestUpstream
let gateway: TestGateway
let admin: string
const agents = new Map<string, Agent>()

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'bouncer-idn3-cookie-guesses-'))
  upstream = await startUpstream()
  idp = await startSignInProvider(UNUSED_ORIGIN)
  const adminPort = await closedPort()
  admin = `http://127.0.0.1:${adminPort}`
  gateway = await startSignInGateway({
    ...signInConfig(idp, { session: { store: { type: 'sqlite', path: join(dir, 'sessions.db') } } }),
    admin: { roles: ['platform'] },
    roles: [{ name: 'platform', assumed_by: [{ issuer: 'sso', claims: { groups: 'platform' } }], policies: ['apps'] }],
    policies: [{ name: 'apps', statements: [{ sid: 'Apps', effect: 'allow', actions: ['GET'], routes: ['app', 'mixed'] }] }],
    upstreams: [{ name: 'app', url: upstream.url }],
    routes: [
      { id: 'app', path: '/app/*', upstream: 'app', accept: ['session'] },
      { id: 'mixed', path: '/mixed/*', upstream: 'app', accept: ['session', 'bearer'] },
    ],
    auth_failures: { rate: '1/m', burst: 3 },
  }, { adminPort })
}, 60_000)

afterAll(async () => {
  await Promise.all([...agents.values()].map((a) => a.close()))
  await gateway?.close()
  await upstream?.close()
  await idp?.stop()
  await rm(dir, { recursive: true, force: true })
})

/** A signed-in person's session as the callback of `audience`'s sign-in stores it; its cookie value. */
async function sessionOf(audience: SessionAudience, subject: string): Promise<string> {
  const value = randomBytes(32).toString('base64url')
  const now = Date.now()
  await gateway.state.runtime.signIn!.store.put({
    id: sessionId(value), issuer: 'sso', subject, claims: { sub: subject, groups: ['platform'] },
    createdAt: now, lastSeenAt: now, expiresAt: now + 3_600_000, refreshAt: null, sealed: null, audience,
  })
  return value
}

/** Status and code of a GET from one loopback address (each is a client of its own) with `cookie`. */
async function get(url: string, from: string, cookie: string): Promise<string> {
  let agent = agents.get(from)
  if (agent === undefined) agents.set(from, (agent = new Agent({ localAddress: from })))
  const res = await request(url, { dispatcher: agent, headers: { cookie } })
  const text = await res.body.text()
  const code = text.startsWith('{') ? (JSON.parse(text) as { code?: string }).code : undefined
  return `${res.statusCode} ${code ?? ''}`
}

const madeUp = () => randomBytes(32).toString('base64url')

describe('auth_failures and session cookies', () => {
  it('holds back an address sending made-up session cookies, and no other', async () => {
    const from = '127.0.0.21'
    // The burst of 3 spent by the fourth failure: held from the fifth request.
    for (let i = 0; i < 4; i++) expect(await get(`${gateway.url}/app/x`, from, `bouncer_session=${madeUp()}`)).toBe('401 session_expired')
    expect(await get(`${gateway.url}/app/x`, from, `bouncer_session=${madeUp()}`)).toBe('429 rate_limited')
    // Held back: its genuine session too; another address's goes on.
    const genuine = await sessionOf('gateway', 'ann')
    expect(await get(`${gateway.url}/app/x`, from, `bouncer_session=${genuine}`)).toBe('429 rate_limited')
    expect(await get(`${gateway.url}/app/x`, '127.0.0.22', `bouncer_session=${genuine}`)).toBe('200 ')
  })

  it('counts cookies that are none the gateway makes, and on a route that also takes tokens', async () => {
    const from = '127.0.0.23'
    expect(await get(`${gateway.url}/app/x`, from, 'bouncer_session=not-a-session')).toBe('401 session_required')
    for (let i = 0; i < 3; i++) expect(await get(`${gateway.url}/mixed/x`, from, `bouncer_session=${madeUp()}`)).toBe('401 session_expired')
    expect(await get(`${gateway.url}/mixed/x`, from, `bouncer_session=${madeUp()}`)).toBe('429 rate_limited')
  })

  it('holds back an address sending made-up console cookies to the admin listener', async () => {
    const from = '127.0.0.24'
    for (let i = 0; i < 4; i++) expect(await get(`${admin}/api/session`, from, `bouncer_console=${madeUp()}`)).toBe('401 session_expired')
    expect(await get(`${admin}/api/session`, from, `bouncer_console=${madeUp()}`)).toBe('429 rate_limited')
    const operator = await sessionOf('console', 'cora')
    expect(await get(`${admin}/api/session`, '127.0.0.25', `bouncer_console=${operator}`)).toBe('200 ')
  })

  it('clears a cookie that names no session with its 401, so a page\'s next requests do not send it', async () => {
    const res = await request(`${gateway.url}/app/x`, { headers: { cookie: `bouncer_session=${madeUp()}` } })
    await res.body.dump()
    expect(res.statusCode).toBe(401)
    expect(String(res.headers['set-cookie'])).toMatch(/^bouncer_session=; Path=\/; Max-Age=0; HttpOnly/)
  })

  it('does not count a session that is genuine but for the other sign-in', async () => {
    const from = '127.0.0.26'
    const consoles = await sessionOf('console', 'cid')
    for (let i = 0; i < 5; i++) expect(await get(`${gateway.url}/app/x`, from, `bouncer_session=${consoles}`)).toBe('401 session_required')
  })
})
