// The gateway's browser sign-in and the admin console's keep their sessions in one store (sign_in's):
// each accepts only the sessions it made. A gateway session's cookie value, which lives on the
// applications' domain, opens no console; a console session's opens no application. Both kinds are
// put in the real SQLite store as each callback would write them, then presented to a real gateway
// and its admin listener; `bouncer sessions list` says whose each is.
import { randomBytes } from 'node:crypto'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { request } from 'undici'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { sessionId, type SessionAudience } from '../../src/identity/index.ts'
import { runCliInProcess } from '../helpers/cli-in-process.ts'
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

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'bouncer-session-audience-'))
  upstream = await startUpstream()
  idp = await startSignInProvider(UNUSED_ORIGIN)
  const adminPort = await closedPort()
  admin = `http://127.0.0.1:${adminPort}`
  gateway = await startSignInGateway({
    ...signInConfig(idp, { session: { store: { type: 'sqlite', path: join(dir, 'sessions.db') } } }),
    admin: { roles: ['platform'] },
    roles: [{ name: 'platform', assumed_by: [{ issuer: 'sso', claims: { groups: 'platform' } }], policies: ['apps'] }],
    policies: [{ name: 'apps', statements: [{ sid: 'Apps', effect: 'allow', actions: ['GET'], routes: ['app'] }] }],
    upstreams: [{ name: 'app', url: upstream.url }],
    routes: [{ id: 'app', path: '/app/*', upstream: 'app', accept: ['session'] }],
  }, { adminPort })
}, 60_000)

afterAll(async () => {
  await gateway?.close()
  await upstream?.close()
  await idp?.stop()
  await rm(dir, { recursive: true, force: true })
})

/** A signed-in person's session as the callback of `audience`'s sign-in stores it; its cookie value. */
async function sessionOf(audience: SessionAudience, subject: string): Promise<{ value: string; id: string }> {
  const value = randomBytes(32).toString('base64url')
  const now = Date.now()
  const id = sessionId(value)
  await gateway.state.runtime.signIn!.store.put({
    id, issuer: 'sso', subject, claims: { sub: subject, groups: ['platform'], email: `${subject}@example.com` },
    createdAt: now, lastSeenAt: now, expiresAt: now + 3_600_000, refreshAt: null, sealed: null, audience,
  })
  return { value, id }
}

async function problemOf(res: Awaited<ReturnType<typeof request>>): Promise<{ code: string; detail: string }> {
  return (await res.body.json()) as { code: string; detail: string }
}

describe('a session belongs to the sign-in that made it', () => {
  it('the gateway takes its own sessions and refuses the console\'s', async () => {
    const own = await sessionOf('gateway', 'ann')
    const opened = await request(`${gateway.url}/app/reports`, { headers: { cookie: `bouncer_session=${own.value}` } })
    expect(opened.statusCode).toBe(200)
    await opened.body.dump()

    const consoles = await sessionOf('console', 'cid')
    const refused = await request(`${gateway.url}/app/reports`, { headers: { cookie: `bouncer_session=${consoles.value}` } })
    expect(refused.statusCode).toBe(401)
    expect(await problemOf(refused)).toMatchObject({ code: 'session_required', detail: expect.stringContaining('admin console') })
  })

  it('the console takes its own sessions and refuses the gateway\'s', async () => {
    const own = await sessionOf('console', 'cora')
    const opened = await request(`${admin}/api/session`, { headers: { cookie: `bouncer_console=${own.value}` } })
    expect(opened.statusCode).toBe(200)
    expect(await opened.body.json()).toMatchObject({ access: 'admin' })

    const gateways = await sessionOf('gateway', 'gus')
    const refused = await request(`${admin}/api/session`, { headers: { cookie: `bouncer_console=${gateways.value}` } })
    expect(refused.statusCode).toBe(401)
    expect(await problemOf(refused)).toMatchObject({ code: 'session_required', detail: expect.stringContaining('gateway\'s sign-in') })
    expect(refused.headers['x-bouncer-sign-in']).toBe('/.bouncer/sign_in')
  })

  it('signing out of one ends none of the other\'s sessions', async () => {
    const consoles = await sessionOf('console', 'sam')
    const signedOut = await request(`${gateway.url}/.bouncer/sign_out`, { method: 'POST', headers: { cookie: `bouncer_session=${consoles.value}`, origin: gateway.url } })
    expect(signedOut.statusCode).toBe(302)
    await signedOut.body.dump()
    const still = await request(`${admin}/api/session`, { headers: { cookie: `bouncer_console=${consoles.value}` } })
    expect(still.statusCode).toBe(200)
    await still.body.dump()

    const gateways = await sessionOf('gateway', 'gil')
    const consoleSignOut = await request(`${admin}/.bouncer/sign_out`, { method: 'POST', headers: { cookie: `bouncer_console=${gateways.value}`, origin: admin } })
    expect(consoleSignOut.statusCode).toBe(302)
    await consoleSignOut.body.dump()
    const opened = await request(`${gateway.url}/app/reports`, { headers: { cookie: `bouncer_session=${gateways.value}` } })
    expect(opened.statusCode).toBe(200)
    await opened.body.dump()
  })

  it('bouncer sessions list and the admin API say whose each session is', async () => {
    const person = await sessionOf('gateway', 'pat')
    const operator = await sessionOf('console', 'ola')
    const listed = await runCliInProcess(['sessions', 'list', '--json', '--config', gateway.file])
    expect(listed.code, listed.stderr).toBe(0)
    const documents = listed.stdout.trim().split('\n').map((line) => JSON.parse(line) as Record<string, unknown>)
    expect(documents).toContainEqual(expect.objectContaining({ id: person.id, subject: 'pat', audience: 'gateway' }))
    expect(documents).toContainEqual(expect.objectContaining({ id: operator.id, subject: 'ola', audience: 'console' }))
    const table = await runCliInProcess(['sessions', 'list', '--config', gateway.file])
    expect(table.stdout).toMatch(new RegExp(`^${operator.id}\\s+console\\s+ola\\s`, 'm'))

    const viaApi = await request(`${admin}/api/sessions`, { headers: { cookie: `bouncer_console=${operator.value}` } })
    expect(viaApi.statusCode).toBe(200)
    expect(await viaApi.body.json()).toEqual(expect.arrayContaining([
      expect.objectContaining({ id: operator.id, audience: 'console' }),
      expect.objectContaining({ id: person.id, audience: 'gateway' }),
    ]))
  })
})
