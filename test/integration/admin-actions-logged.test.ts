// Found by an adversarial probe (helper): admin actions left no record of who made them: after DELETE /api/keys/{id}, DELETE /api/sessions/{id} and POST /api/reload (all 200) no log line named the id or the caller.
// Now every admin API call but a read is logged at info with the caller (which token, or the
// console's signed-in principal), the method, the path (the id in it) and the status.
// And a credential change (a key's or a session's revocation) is an audit record too, in the admin
// API's chain on this host (`admin:<host>`): it named nobody in the audit log before.
import { createHash } from 'node:crypto'
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { hostname, tmpdir } from 'node:os'
import { join } from 'node:path'
import { DatabaseSync } from 'node:sqlite'
import pg from 'pg'
import { request } from 'undici'
import { stringify } from 'yaml'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { searchAudit, verifyAudit, type AuditRecord, type AuditSource } from '../../src/audit/index.ts'
import { serveConfig } from '../helpers/cli.ts'
import { runCliInProcess } from '../helpers/cli-in-process.ts'
import { cookieJar, submitLogin } from '../helpers/cookie-jar.ts'
import { heldPort } from '../helpers/faults.ts'
import { dropSchema, SHARED_POSTGRES, uniqueSchema } from '../helpers/postgres.ts'
import { startTestGateway, type TestGateway } from '../helpers/gateway.ts'
import type { Person, TestIdentityProvider } from '../helpers/identity-provider.ts'
import { SCOPES_WITH_GROUPS, signInConfig, startSignInGateway, startSignInProvider } from '../helpers/sign-in.ts'
import { startUpstream, type TestUpstream } from '../helpers/upstream.ts'
import { waitFor } from '../helpers/wait.ts'

const ADMIN_TOKEN = 'admin-actions-logged-token-0123456789'
const READ_TOKEN = 'admin-actions-logged-read-0123456789'
const ALICE: Person = { username: 'alice', password: 'alice-password-123', name: 'Alice', email: 'alice@example.com', groups: ['staff'] }

let dir: string
let upstream: TestUpstream
let idp: TestIdentityProvider
let gateway: TestGateway
let config: Record<string, unknown>

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'bouncer-admin-logged-'))
  upstream = await startUpstream()
  const held = await heldPort()
  const heldAdmin = await heldPort()
  idp = await startSignInProvider([held.port, heldAdmin.port], { people: [ALICE] })
  config = {
    admin: { token: ADMIN_TOKEN, read_token: READ_TOKEN, roles: ['staff'] }, // alice may sign in to the console as an admin
    audit: { sinks: [{ type: 'sqlite', path: join(dir, 'audit.db') }], spill_dir: join(dir, 'spill') },
    api_keys: { store: { type: 'sqlite', path: join(dir, 'keys.db') } },
    ...signInConfig(idp, { scopes: SCOPES_WITH_GROUPS }),
    roles: [{ name: 'staff', assumed_by: [{ issuer: 'sso', claims: { groups: 'staff' } }], policies: ['all'] }],
    policies: [{ name: 'all', statements: [{ sid: 'All', effect: 'allow', actions: ['GET'], routes: ['app'] }] }],
    upstreams: [{ name: 'app', url: upstream.url }],
    routes: [{ id: 'app', path: '/app/*', upstream: 'app', accept: ['session'] }],
  }
  gateway = await startSignInGateway(config, { port: held, adminPort: heldAdmin })
})

afterAll(async () => {
  await gateway?.close()
  await upstream?.close()
  await idp?.stop()
  await rm(dir, { recursive: true, force: true })
})

interface Logged { level: string; msg: string; via: string | null; principal: string | null; method: string; path: string; status: number }

function adminCalls(): Logged[] {
  return gateway.logs.flatMap((line) => {
    const entry = JSON.parse(line) as Logged
    return entry.msg === 'admin API call' ? [entry] : []
  })
}

/** A key made as an operator does (the same sqlite store): the whole key. */
async function createKey(principal: string): Promise<string> {
  const file = join(dir, 'cli.yaml')
  await writeFile(file, stringify({ ...config, audit: { sinks: [] } }))
  const created = await runCliInProcess(['keys', 'create', '--config', file, '--principal', principal])
  expect(created.code, created.stderr).toBe(0)
  return created.stdout.trim()
}

/** A browser session of ALICE, signed in at the provider: its id as the admin API lists it. */
async function signedInSession(): Promise<string> {
  const client = cookieJar()
  const toLogin = await client.follow(`${gateway.url}/app/home`)
  const loggedIn = await submitLogin(client, toLogin.reply!, ALICE.username, ALICE.password)
  const back = await client.follow(loggedIn.location!)
  expect(back.reply?.status, back.reply?.body).toBe(200)
  return createHash('sha256').update(client.cookies(gateway.url).bouncer_session!).digest('hex').slice(0, 32)
}

async function call(method: 'POST' | 'DELETE' | 'GET', path: string, token: string): Promise<number> {
  const res = await request(`${gateway.adminUrl}${path}`, { method, headers: { authorization: `Bearer ${token}` } })
  await res.body.dump()
  return res.statusCode
}

/** An API key made with the command line in the gateway's key store (its own config: no audit log), by id. */
async function keyMadeBeside(serveDir: string, shared: object, principal: string): Promise<string> {
  const file = join(serveDir, 'cli.yaml')
  await writeFile(file, stringify({ ...shared, audit: { sinks: [] } }))
  const created = await runCliInProcess(['keys', 'create', '--config', file, '--principal', principal])
  expect(created.code, created.stderr).toBe(0)
  return created.stdout.trim().slice(3, 19)
}

describe('admin actions are logged with who made them', () => {
  it('names the caller, the method, the path and the status of a revocation, a reload and a refusal', async () => {
    const keyId = (await createKey('looker')).slice(3, 19)
    const sessionId = await signedInSession()

    expect(await call('DELETE', `/api/keys/${keyId}`, ADMIN_TOKEN)).toBe(200)
    expect(await call('DELETE', `/api/sessions/${sessionId}`, ADMIN_TOKEN)).toBe(200)
    expect(await call('POST', '/api/reload', ADMIN_TOKEN)).toBe(200)
    expect(await call('POST', '/api/reload', READ_TOKEN)).toBe(403)
    expect(await call('GET', '/api/keys', READ_TOKEN)).toBe(200) // a read: not logged

    expect(adminCalls().map(({ level, via, principal, method, path, status }) => ({ level, via, principal, method, path, status }))).toEqual([
      { level: 'info', via: 'token', principal: null, method: 'DELETE', path: `/api/keys/${keyId}`, status: 200 },
      { level: 'info', via: 'token', principal: null, method: 'DELETE', path: `/api/sessions/${sessionId}`, status: 200 },
      { level: 'info', via: 'token', principal: null, method: 'POST', path: '/api/reload', status: 200 },
      { level: 'info', via: 'read_token', principal: null, method: 'POST', path: '/api/reload', status: 403 },
    ])
  })

  // Found by the last read: a refused or failed call logged its path as sent, and the admin API
  // takes a whole key as the id of DELETE /api/keys/{id}: a read-only token's 403, or an unknown
  // path under it, wrote the key's secret into the log. The id stays: it names the key.
  it('a refused or failed call with a whole key in its path logs the key\'s id, never its secret', async () => {
    const whole = await createKey('refused-path')
    const id = whole.slice(3, 19)
    const before = gateway.logs.length
    expect(await call('DELETE', `/api/keys/${whole}`, READ_TOKEN)).toBe(403)
    expect(await call('POST', `/api/keys/${whole}`, ADMIN_TOKEN)).toBe(405)
    expect(await call('DELETE', `/api/keys/${whole}/more`, ADMIN_TOKEN)).toBe(404)
    // A path cut at 256 characters 7 hex digits into the secret: cut first, the rest was too short to
    // read as a key, and those 7 stayed in the line (the review); scrubbed first, nothing of it does.
    expect(await call('DELETE', `/api/keys/${'x'.repeat(218)}/${whole}`, ADMIN_TOKEN)).toBe(404)
    const logged = gateway.logs.slice(before).join('')
    expect(logged).not.toContain(whole.slice(20))
    expect(logged).not.toContain(`_${whole.slice(20, 27)}`)
    expect(adminCalls().slice(-4).map(({ method, path, status }) => ({ method, path, status }))).toEqual([
      { method: 'DELETE', path: `/api/keys/bk_${id}_[redacted]`, status: 403 },
      { method: 'POST', path: `/api/keys/bk_${id}_[redacted]`, status: 405 },
      { method: 'DELETE', path: `/api/keys/bk_${id}_[redacted]/more`, status: 404 },
      { method: 'DELETE', path: `/api/keys/${'x'.repeat(218)}/bk_${id}_[redact…(truncated, 259 chars)`, status: 404 },
    ])
    expect(await call('DELETE', `/api/keys/${id}`, ADMIN_TOKEN)).toBe(200)
  })

  // Found by an adversarial probe: the answers kept what the logs no longer did. DELETE
  // /api/keys/{whole key} of an unknown key said `No API key "bk_<id>_<secret>"`, and the 403, 405
  // and 404 details named the path as sent: the secret came back in a problem's detail (SPEC: a
  // detail never holds a token or a secret), for a console, proxy or client log to keep.
  it('a whole key given in a path is named by its id in every problem answer, never with its secret', async () => {
    const unknown = `bk_0123456789abcdef_${'5e'.repeat(32)}`
    const whole = await createKey('answered-path')
    const id = whole.slice(3, 19)
    const answered = async (method: 'POST' | 'DELETE' | 'GET', path: string, token: string) => {
      const res = await request(`${gateway.adminUrl}${path}`, { method, headers: { authorization: `Bearer ${token}` } })
      return { status: res.statusCode, body: (await res.body.json()) as { code: string; detail: string } }
    }
    expect(await answered('DELETE', `/api/keys/${unknown}`, ADMIN_TOKEN)).toEqual({ status: 404, body: expect.objectContaining({ code: 'route_not_found', detail: 'No API key 0123456789abcdef.' }) as unknown })
    const refusals = [
      await answered('DELETE', `/api/keys/${whole}`, READ_TOKEN),
      await answered('POST', `/api/keys/${whole}`, ADMIN_TOKEN),
      await answered('DELETE', `/api/keys/${whole}/more`, ADMIN_TOKEN),
      await answered('GET', `/keys/${whole}`, ADMIN_TOKEN),
    ]
    expect(refusals.map((r) => r.status)).toEqual([403, 405, 404, 404])
    for (const { body } of refusals) {
      expect(body.detail).toContain(`bk_${id}_[redacted]`)
      expect(body.detail).not.toContain(whole.slice(20))
    }
    expect(await call('DELETE', `/api/keys/${id}`, ADMIN_TOKEN)).toBe(200)
  })

  // Found by the review: a call that failed inside (an internal error) logged `path` as the request
  // line's, unscrubbed: a whole key given as the id of DELETE /api/keys/{id} kept its secret there.
  it('an admin call that fails inside (the store refuses it: 503) logs the path with a whole key\'s secret redacted', async () => {
    const whole = await createKey('failing-path')
    const id = whole.slice(3, 19)
    const store = new DatabaseSync(join(dir, 'keys.db'))
    const before = gateway.logs.length
    try {
      store.exec('ALTER TABLE api_keys RENAME TO api_keys_away') // the store fails under the call
      expect(await call('DELETE', `/api/keys/${whole}`, ADMIN_TOKEN)).toBe(503)
    } finally {
      store.exec('ALTER TABLE api_keys_away RENAME TO api_keys')
      store.close()
    }
    const failed = gateway.logs.slice(before).map((line) => JSON.parse(line) as { msg: string; path?: string; status?: number }).filter((entry) => entry.msg === 'admin API call')
    expect(failed.map((entry) => [entry.path, entry.status])).toEqual([[`/api/keys/bk_${id}_[redacted]`, 503]])
    expect(gateway.logs.slice(before).join('')).not.toContain(whole.slice(20))
  })

  it('records each revocation in the audit log: the admin caller, method, path without the key, what changed; verify passes; found by principal', async () => {
    const chain = `admin:${hostname()}`
    const whole = await createKey('reporter')
    const keyId = whole.slice(3, 19)
    const sessionId = await signedInSession()
    const before = gateway.logs.length

    // The whole key as the path's id (the admin API takes it, as the command line does): only its id is recorded.
    expect(await call('DELETE', `/api/keys/${whole}`, ADMIN_TOKEN)).toBe(200)
    expect(await call('DELETE', `/api/keys/${keyId}`, ADMIN_TOKEN)).toBe(200) // revoked before: nothing changed, no record
    expect(await call('DELETE', `/api/sessions/${sessionId}`, ADMIN_TOKEN)).toBe(200)

    // Written before the answer: no wait. Found as the admin search finds it, by the caller.
    const res = await request(`${gateway.adminUrl}/api/audit?principal=admin.token&limit=100`, { headers: { authorization: `Bearer ${ADMIN_TOKEN}` } })
    expect(res.statusCode).toBe(200)
    const found = ((await res.body.json()) as AuditRecord[]).filter((r) => r.instance === chain && (r.client_id === keyId || r.path === `/api/sessions/${sessionId}`)).reverse()
    expect(found).toHaveLength(2)
    expect(found[0]).toMatchObject({
      method: 'DELETE', path: `/api/keys/${keyId}`, status: 200, decision: 'allow', issuer: 'admin', subject: 'admin.token', credential: 'admin_token',
      client_id: keyId, instance: chain, source_ip: '127.0.0.1', detail: `Revoked API key ${keyId} of principal reporter.`,
    })
    expect(found[1]).toMatchObject({
      method: 'DELETE', path: `/api/sessions/${sessionId}`, status: 200, issuer: 'admin', subject: 'admin.token', credential: 'admin_token',
      client_id: null, instance: chain,
    })
    expect(found[1]?.detail).toMatch(new RegExp(`^Revoked session ${sessionId} of sso/.+\\.$`))
    expect(found[1]?.prev_hash).toBe(found[0]?.hash) // one chain, linked
    // The key's secret is in no record and no log line.
    const source: AuditSource = { type: 'sqlite', path: join(dir, 'audit.db') }
    expect(JSON.stringify(await searchAudit(source, { limit: 1000 }))).not.toContain(whole)
    expect(gateway.logs.slice(before).join('')).not.toContain(whole)
    expect(await verifyAudit(source)).toMatchObject({ ok: true })

    // Anchored by the gateway's checkpoint key: the chain's newest record deleted (in a copy, the
    // gateway runs on) is named against the checkpoint file. Not anchored before: it did not show.
    const copy = join(dir, 'admin-chain-copy.db')
    const live = new DatabaseSync(join(dir, 'audit.db'))
    live.exec(`VACUUM INTO '${copy}'`)
    live.close()
    const tampered = new DatabaseSync(copy)
    tampered.prepare('DELETE FROM audit_records WHERE id = ?').run(found[1]?.id as string)
    tampered.close()
    const cli = join(dir, 'admin-chain-copy.yaml')
    await writeFile(cli, stringify({ audit: { sinks: [{ type: 'sqlite', path: copy }], checkpoint_path: join(dir, 'audit.db.checkpoints') } }))
    const verify = await runCliInProcess(['audit', 'verify', '--config', cli])
    expect(verify.code).toBe(1)
    expect(verify.stderr).toMatch(new RegExp(`^audit log truncated: 1 record missing after record (\\d+) of chain ${chain}: `, 'm'))
  })

  it('a secrets store that cannot give the checkpoint key: the revocation is still recorded (not anchored), and answered 200', async () => {
    // Reading the key for the change chain threw out of the admin API after the key was revoked:
    // a 500, no audit record, and no "NOT AUDITED" line either.
    const own = await mkdtemp(join(dir, 'store-'))
    const env = { BOUNCER_MASTER_KEY: Buffer.alloc(32, 9).toString('base64') }
    const keys = { store: { type: 'sqlite', path: join(own, 'keys.db') } }
    const audit = { sinks: [{ type: 'sqlite', path: join(own, 'audit.db') }], spill_dir: join(own, 'spill') }
    const secrets = { store: { type: 'embedded', path: join(own, 'secrets.db'), master_key: 'env:BOUNCER_MASTER_KEY' } }
    const gw = await startTestGateway({ admin: { token: ADMIN_TOKEN }, audit, secrets, api_keys: keys, upstreams: [{ name: 'app', url: upstream.url }], routes: [{ id: 'app', path: '/app/*', upstream: 'app', accept: ['api_key'] }] }, { env })
    try {
      const file = join(own, 'cli.yaml')
      await writeFile(file, stringify({ api_keys: keys, upstreams: [{ name: 'app', url: upstream.url }], routes: [{ id: 'app', path: '/app/*', upstream: 'app', accept: ['api_key'] }] }))
      const created = await runCliInProcess(['keys', 'create', '--config', file, '--principal', 'reporter'])
      expect(created.code, created.stderr).toBe(0)
      const keyId = created.stdout.trim().slice(3, 19)
      // The key's sealed value damaged in the store (the gateway's audit worker holds it already).
      const store = new DatabaseSync(join(own, 'secrets.db'))
      expect(Number(store.prepare("UPDATE secret_versions SET sealed = x'00' WHERE name = 'bouncer.audit-checkpoint-key'").run().changes)).toBe(1)
      store.close()
      const res = await request(`${gw.adminUrl}/api/keys/${keyId}`, { method: 'DELETE', headers: { authorization: `Bearer ${ADMIN_TOKEN}` } })
      expect(res.statusCode, await res.body.text()).toBe(200)
      const records = await searchAudit({ type: 'sqlite', path: join(own, 'audit.db') }, { limit: 10, principal: 'admin.token' })
      expect(records).toMatchObject([{ method: 'DELETE', path: `/api/keys/${keyId}`, status: 200, client_id: keyId, instance: `admin:${hostname()}` }])
      expect(gw.logs.join('')).not.toContain('NOT AUDITED')
      // …and the operator is told the record is not anchored (it was silent).
      expect(gw.logs.join('')).toContain('admin change recorded, but not anchored: the checkpoint key could not be read')
    } finally {
      await gw.close()
    }
  })

  it('names the person signed in to the console who revoked a session: their issuer, subject, credential session, admin role', async () => {
    const sessionId = await signedInSession()
    // alice signs in to the console on the admin listener.
    const consoleJar = cookieJar()
    const toLogin = await consoleJar.follow(`${gateway.adminUrl}/.bouncer/sign_in?return_to=/`)
    const loggedIn = await submitLogin(consoleJar, toLogin.reply!, ALICE.username, ALICE.password)
    await consoleJar.follow(loggedIn.location!)
    const cookie = `bouncer_console=${consoleJar.cookies(gateway.adminUrl).bouncer_console}`
    const res = await request(`${gateway.adminUrl}/api/sessions/${sessionId}`, { method: 'DELETE', headers: { cookie, origin: gateway.adminUrl } })
    await res.body.dump()
    expect(res.statusCode).toBe(200)

    const records = await searchAudit({ type: 'sqlite', path: join(dir, 'audit.db') }, { limit: 10, principal: 'alice' })
    expect(records.filter((r) => r.instance === `admin:${hostname()}`)).toEqual([expect.objectContaining({
      method: 'DELETE', path: `/api/sessions/${sessionId}`, issuer: 'sso', subject: 'alice', credential: 'session', roles: ['staff'],
      detail: expect.stringMatching(new RegExp(`^Revoked session ${sessionId} of sso/`)),
    })])
  })

  // Found by the last read: the admin API wrote a change's record with node:sqlite on the gateway's
  // own thread, and while the audit log's write lock was taken (the audit worker committing a batch,
  // a command line's record) SQLite's busy wait (up to 5 s) stopped every request with it.
  it('a revocation waiting for the audit log\'s write lock holds up nothing else: the event loop runs, and the record is written once the lock is free', async () => {
    const keyId = (await createKey('waiting')).slice(3, 19)
    const locker = new DatabaseSync(join(dir, 'audit.db'))
    let longestGap = 0
    let last = performance.now()
    let ticks = 0
    const ticker = setInterval(() => {
      const now = performance.now()
      longestGap = Math.max(longestGap, now - last)
      last = now
      ticks++
    }, 10)
    try {
      locker.exec('BEGIN IMMEDIATE') // the write lock, as a sink committing a batch holds it
      const revoked = call('DELETE', `/api/keys/${keyId}`, ADMIN_TOKEN)
      // The loop keeps turning while the record waits (before: one stall of SQLite's busy timeout).
      await waitFor(() => ticks >= 30, 'thirty turns of the event loop while the lock is held')
      locker.exec('COMMIT')
      expect(await revoked).toBe(200)
    } finally {
      clearInterval(ticker)
      if (locker.isTransaction) locker.exec('ROLLBACK')
      locker.close()
    }
    expect(longestGap).toBeLessThan(1_000)
    const records = await searchAudit({ type: 'sqlite', path: join(dir, 'audit.db') }, { limit: 100, principal: 'admin.token' })
    expect(records.filter((r) => r.client_id === keyId)).toEqual([expect.objectContaining({ method: 'DELETE', path: `/api/keys/${keyId}`, instance: `admin:${hostname()}` })])
    expect(gateway.logs.join('')).not.toContain('NOT AUDITED')
  })

  // Found by the review: the record waits for the lock on the audit side thread, and a SIGTERM then
  // drained and exited without it: the key revoked, no record of who did it and no line saying so.
  it('a SIGTERM while a revocation\'s record waits for the lock: the drain waits, and the record is written', async () => {
    const serveDir = await mkdtemp(join(tmpdir(), 'bouncer-admin-drain-'))
    const shared = { admin: { token: ADMIN_TOKEN }, audit: { sinks: [{ type: 'sqlite', path: join(serveDir, 'audit.db') }], spill_dir: join(serveDir, 'spill') }, api_keys: { store: { type: 'sqlite', path: join(serveDir, 'keys.db') } } }
    const served = await serveConfig({ ...shared, upstreams: [{ name: 'app', url: upstream.url }], routes: [{ id: 'app', path: '/app/*', upstream: 'app', public: true }] })
    let locker: DatabaseSync | undefined
    try {
      const keyId = await keyMadeBeside(serveDir, shared, 'draining')
      locker = new DatabaseSync(join(serveDir, 'audit.db'))
      locker.exec('BEGIN IMMEDIATE') // the write lock, as a sink committing a batch holds it
      const revoking = request(`${served.adminUrl}/api/keys/${keyId}`, { method: 'DELETE', headers: { authorization: `Bearer ${ADMIN_TOKEN}` } }).catch(() => undefined)
      await waitFor(async () => {
        const res = await request(`${served.adminUrl}/api/keys`, { headers: { authorization: `Bearer ${ADMIN_TOKEN}` } })
        return ((await res.body.json()) as Array<{ id: string; revoked_at: string | null }>).some((key) => key.id === keyId && key.revoked_at !== null)
      }, 'the key revoked, its record waiting for the lock')
      served.child.kill('SIGTERM')
      let exited = false
      void served.exited.then(() => (exited = true))
      await waitFor(() => exited || served.stderr().includes('waiting for the audit records of admin changes'), 'the drain to wait for the record, or the process to end')
      locker.exec('COMMIT')
      expect(await served.exited).toBe(0)
      await revoking
      const records = await searchAudit({ type: 'sqlite', path: join(serveDir, 'audit.db') }, { limit: 10, principal: 'admin.token' })
      expect(records.map((r) => ({ client_id: r.client_id, method: r.method, path: r.path }))).toEqual([{ client_id: keyId, method: 'DELETE', path: `/api/keys/${keyId}` }])
      expect(served.stderr()).not.toContain('NOT AUDITED')
    } finally {
      if (locker?.isTransaction) locker.exec('ROLLBACK')
      locker?.close()
      await served.stop()
      await rm(serveDir, { recursive: true, force: true })
    }
  })

  // The drain waited for requests in flight up to shutdown_timeout, then for the change records
  // under way up to shutdown_timeout again: twice the time an operator gave it, past the hard stops
  // counted from the signal. PostgreSQL here: a change record waits on its chain's lock, which the
  // gateway's own records do not take, so the audit log's close does not wait with it.
  it('a SIGTERM with a request in flight and a revocation\'s record held by its lock ends by shutdown_timeout, and says the record is not written', async () => {
    const serveDir = await mkdtemp(join(tmpdir(), 'bouncer-admin-deadline-'))
    const schema = uniqueSchema('admin_deadline')
    const stalling = await startUpstream(() => {}) // answers nothing: the request stays in flight
    const locker = new pg.Client({ connectionString: SHARED_POSTGRES })
    await locker.connect()
    const shutdownTimeoutMs = 2_000
    const shared = { admin: { token: ADMIN_TOKEN }, audit: { sinks: [{ type: 'postgres', url: SHARED_POSTGRES, schema }], spill_dir: join(serveDir, 'spill') }, api_keys: { store: { type: 'sqlite', path: join(serveDir, 'keys.db') } } }
    const served = await serveConfig({
      ...shared,
      server: { listen: '127.0.0.1:0', shutdown_timeout: `${shutdownTimeoutMs}ms` },
      upstreams: [{ name: 'stalling', url: stalling.url }],
      routes: [{ id: 'stalling', path: '/stalling/*', upstream: 'stalling', public: true }],
    })
    try {
      const keyId = await keyMadeBeside(serveDir, shared, 'deadline')
      // The admin chain's lock, as another process on the host appending to it holds it (sinks/postgres.ts).
      await locker.query('SELECT pg_advisory_lock(hashtext($1))', [`bouncer-audit-chain:${schema}:admin:${hostname()}`])
      const revoking = request(`${served.adminUrl}/api/keys/${keyId}`, { method: 'DELETE', headers: { authorization: `Bearer ${ADMIN_TOKEN}` } }).catch(() => undefined)
      await waitFor(async () => {
        const res = await request(`${served.adminUrl}/api/keys`, { headers: { authorization: `Bearer ${ADMIN_TOKEN}` } })
        return ((await res.body.json()) as Array<{ id: string; revoked_at: string | null }>).some((key) => key.id === keyId && key.revoked_at !== null)
      }, 'the key revoked, its record waiting for the lock')
      const inFlight = request(`${served.url}/stalling/slow`).catch(() => undefined)
      await waitFor(() => stalling.started.includes('/stalling/slow'), 'the request at the upstream')

      const signalled = performance.now()
      served.child.kill('SIGTERM')
      expect(await served.exited).toBe(0)
      const took = performance.now() - signalled
      await Promise.all([revoking, inFlight])
      // The requests had the whole timeout (cut at its end); the change records no more time after it.
      expect(took).toBeGreaterThanOrEqual(shutdownTimeoutMs)
      expect(took, served.stderr()).toBeLessThan(2 * shutdownTimeoutMs)
      expect(served.stderr()).toContain('shutdown timeout: closing connections with requests in flight')
      expect(served.stderr()).toContain('admin change made, but NOT AUDITED: the drain reached shutdown_timeout before its audit record was written')
    } finally {
      await locker.end()
      await served.stop()
      await stalling.close()
      await dropSchema(SHARED_POSTGRES, schema)
      await rm(serveDir, { recursive: true, force: true })
    }
  })
})
