// Whom the audit record names when people and keys are refused or sign in and out (a probe): a
// revoked or expired API key still in use had `client_id` and `subject` null, its id only in
// `detail`, so `bouncer audit --principal` could not find it; the callback that signs a person in
// and the sign-out had `subject` null. An unknown key id, or a known one with a wrong secret,
// still names no one: the id is the sender's choice, proven by nothing.
import { randomUUID } from 'node:crypto'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { request } from 'undici'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { waitForAuditRecord } from '../helpers/audit.ts'
import { closeAll } from '../helpers/browser.ts'
import { runCliInProcess } from '../helpers/cli-in-process.ts'
import { cookieJar, submitLogin } from '../helpers/cookie-jar.ts'
import { heldPort } from '../helpers/faults.ts'
import type { TestGateway } from '../helpers/gateway.ts'
import type { TestIdentityProvider } from '../helpers/identity-provider.ts'
import { ALICE, SCOPES_WITH_GROUPS, signInConfig, startSignInGateway, startSignInProvider } from '../helpers/sign-in.ts'
import { startUpstream, type TestUpstream } from '../helpers/upstream.ts'
import { waitFor } from '../helpers/wait.ts'

let dir: string
let auditDb: string
let idp: TestIdentityProvider
let upstream: TestUpstream
let gateway: TestGateway

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'bouncer-people-audit-'))
  auditDb = join(dir, 'audit.db')
  upstream = await startUpstream()
  const held = await heldPort()
  idp = await startSignInProvider(held.port, { people: [ALICE], afterSignOut: '/' })
  gateway = await startSignInGateway({
    api_keys: { store: { type: 'sqlite', path: join(dir, 'keys.db') }, cache: '100ms' },
    audit: { sinks: [{ type: 'sqlite', path: auditDb }], spill_dir: join(dir, 'spill'), flush_interval: '20ms' },
    ...signInConfig(idp, { scopes: SCOPES_WITH_GROUPS, session: { store: 'memory' } }),
    roles: [
      { name: 'analysts', assumed_by: [{ issuer: 'sso', claims: { groups: 'analysts' } }], policies: ['read'] },
      { name: 'connectors', assumed_by: [{ issuer: 'api-keys' }], policies: ['read'] },
    ],
    policies: [{ name: 'read', statements: [{ sid: 'Read', effect: 'allow', actions: ['GET'], routes: ['*'] }] }],
    upstreams: [{ name: 'app', url: upstream.url }],
    routes: [
      { id: 'data', path: '/data/*', upstream: 'app', accept: ['api_key'] },
      { id: 'people', path: '/people/*', upstream: 'app', accept: ['session'] },
    ],
  }, { port: held })
}, 60_000)

afterAll(() => closeAll(gateway, upstream, idp, () => rm(dir, { recursive: true, force: true })))

async function createKey(principal: string, ...more: string[]): Promise<{ key: string; id: string }> {
  const created = await runCliInProcess(['keys', 'create', '--config', gateway.file, '--principal', principal, ...more])
  expect(created.code, created.stderr).toBe(0)
  const key = created.stdout.trim()
  return { key, id: key.slice(3, 19) }
}

/** Sends the key; the audit record of the answer. */
async function recordOfKey(key: string) {
  const requestId = randomUUID()
  const res = await request(`${gateway.url}/data/orders`, { headers: { 'x-api-key': key, 'x-request-id': requestId } })
  await res.body.dump()
  return { status: res.statusCode, record: await waitForAuditRecord(auditDb, requestId) }
}

/** Until the gateway refuses the key (the store's cache, the key's expiry): waited on, not slept. */
async function refusedOnce(key: string): Promise<void> {
  await waitFor(async () => {
    const res = await request(`${gateway.url}/data/orders`, { headers: { 'x-api-key': key } })
    await res.body.dump()
    return res.statusCode === 401
  }, 'the key to be refused', 10_000)
}

describe('the audit record of a refused API key', { timeout: 60_000 }, () => {
  it('a revoked key still in use: its id as client_id, its principal as subject, never its secret', async () => {
    const { key, id } = await createKey('looker-old')
    expect((await recordOfKey(key)).status).toBe(200)
    expect((await runCliInProcess(['keys', 'revoke', '--config', gateway.file, id])).code).toBe(0)
    await refusedOnce(key) // after api_keys.cache
    const { status, record } = await recordOfKey(key)
    expect(status).toBe(401)
    expect(record).toMatchObject({ code: 'api_key_revoked', decision: 'deny', credential: 'api_key', issuer: 'api-keys', subject: 'looker-old', client_id: id, roles: [] })
    expect(JSON.stringify(record)).not.toContain(key.slice(20))
  })

  it('an expired key: the same', async () => {
    const { key, id } = await createKey('looker-brief', '--expires', '1s')
    await refusedOnce(key) // past its second
    const { status, record } = await recordOfKey(key)
    expect(status).toBe(401)
    expect(record).toMatchObject({ code: 'api_key_invalid', credential: 'api_key', subject: 'looker-brief', client_id: id })
  })

  it('an unknown id, or a real id with a wrong secret, names no one', async () => {
    const { id } = await createKey('looker-real')
    for (const key of [`bk_0123456789abcdef_${'0'.repeat(64)}`, `bk_${id}_${'0'.repeat(64)}`]) {
      const { status, record } = await recordOfKey(key)
      expect(status).toBe(401)
      expect(record).toMatchObject({ code: 'api_key_invalid', subject: null, client_id: null, issuer: null })
      expect(record.credential ?? null).toBeNull()
    }
  })
})

describe('the audit record of signing in and out', { timeout: 60_000 }, () => {
  it('the callback that signs a person in, and the sign-out, name the person', async () => {
    const client = cookieJar()
    const toLogin = await client.follow(`${gateway.url}/people/home`)
    const loggedIn = await submitLogin(client, toLogin.reply!, ALICE.username, ALICE.password)
    const stopped = await client.follow(loggedIn.location!, { stop: (url) => url.startsWith(`${gateway.url}/.bouncer/callback`) })
    const signedInId = randomUUID()
    const back = await client.request(stopped.url, { headers: { 'x-request-id': signedInId } })
    expect(back.status).toBe(302)
    expect(await waitForAuditRecord(auditDb, signedInId)).toMatchObject({ route: 'builtin/sign-in-callback', status: 302, credential: 'session', issuer: idp.issuer, subject: 'alice' })

    const signedOutId = randomUUID()
    const out = await client.request(`${gateway.url}/.bouncer/sign_out`, { method: 'POST', headers: { origin: gateway.url, 'x-request-id': signedOutId } })
    expect(out.status).toBe(302)
    expect(await waitForAuditRecord(auditDb, signedOutId)).toMatchObject({ route: 'builtin/sign-out', status: 302, credential: 'session', subject: 'alice' })

    // Signed out already: nobody is named.
    const againId = randomUUID()
    await client.request(`${gateway.url}/.bouncer/sign_out`, { method: 'POST', headers: { origin: gateway.url, 'x-request-id': againId } })
    expect(await waitForAuditRecord(auditDb, againId)).toMatchObject({ route: 'builtin/sign-out', subject: null })
  })
})
