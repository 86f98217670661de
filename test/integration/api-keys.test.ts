// API keys end to end (issue 17 point 2): created and revoked with the real `bouncer keys`
// command, sent over HTTP in X-API-Key and as Authorization: Bearer bk_…, checked by a gateway
// whose store is a SQLite file that a second gateway (a `bouncer serve` process) shares. A key's
// principal is a caller like any other: trust rules, policies, limits and the audit record.
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { DatabaseSync } from 'node:sqlite'
import { monitorEventLoopDelay } from 'node:perf_hooks'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { request } from 'undici'
import { stringify } from 'yaml'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { AuditRecord } from '../../src/audit/record.ts'
import { searchAudit } from '../../src/audit/search.ts'
import { newApiKey, openApiKeyStore } from '../../src/identity/index.ts'
import { runCli, startServe, type ServeProcess } from '../helpers/cli.ts'
import { runCliInProcess } from '../helpers/cli-in-process.ts'
import { startTestGateway, type TestGateway } from '../helpers/gateway.ts'
import { AUDIENCE, startIdentityProvider, type TestIdentityProvider } from '../helpers/identity-provider.ts'
import { startUpstream, type Received, type TestUpstream } from '../helpers/upstream.ts'
import { waitFor, waitForMetric } from '../helpers/wait.ts'

const ADMIN = 'api-keys-test-admin-token-0123456'
const KEY = /^bk_[0-9a-f]{16}_[0-9a-f]{64}$/

let dir: string
let idp: TestIdentityProvider
let upstream: TestUpstream
let gateway: TestGateway
let configFile: string
let auditDb: string

function gatewayConfig(keysDb: string): Record<string, unknown> {
  return {
    admin: { token: ADMIN },
    api_keys: { store: { type: 'sqlite', path: keysDb }, cache: '500ms' },
    issuers: [{ name: 'corp', issuer: idp.issuer, audiences: [AUDIENCE] }],
    roles: [
      { name: 'bi-connectors', assumed_by: [{ issuer: 'api-keys', subject: 'looker-*' }], policies: ['read'] },
      { name: 'services', assumed_by: [{ issuer: 'corp' }], policies: ['read'] },
    ],
    policies: [{ name: 'read', statements: [{ sid: 'Read', effect: 'allow', actions: ['GET'], routes: ['*'] }] }],
    upstreams: [{ name: 'api', url: upstream.url }],
    limits: [{ name: 'per-principal', key: 'principal', rate: '1/m', burst: 3 }],
    routes: [
      { id: 'keys-first', path: '/data/*', upstream: 'api', accept: ['api_key', 'bearer'] },
      { id: 'bearer-first', path: '/either/*', upstream: 'api', accept: ['bearer', 'api_key'] },
      { id: 'jwt-only', path: '/jwt/*', upstream: 'api' },
      { id: 'keys-only', path: '/keys/*', upstream: 'api', accept: ['api_key'] },
      { id: 'limited', path: '/limited', upstream: 'api', accept: ['api_key'], limits: ['per-principal'] },
      { id: 'forwarding', path: '/forwarding/*', upstream: 'api', accept: ['api_key', 'bearer'], forward_authorization: true },
    ],
  }
}

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'bouncer-api-keys-'))
  idp = await startIdentityProvider()
  upstream = await startUpstream()
  auditDb = join(dir, 'audit.db')
  const config = { ...gatewayConfig(join(dir, 'keys.db')), audit: { sinks: [{ type: 'sqlite', path: auditDb }], spill_dir: join(dir, 'spill'), flush_interval: '20ms' } }
  configFile = join(dir, 'bouncer.yaml')
  await writeFile(configFile, stringify(config))
  gateway = await startTestGateway(config)
  await waitFor(() => gateway.state.runtime.issuerKeys.get('corp')?.state === 'ready', 'the issuer keys')
})

afterAll(async () => {
  await gateway?.close()
  await upstream?.close()
  await idp?.stop()
  await rm(dir, { recursive: true, force: true })
})

/**
 * A key to use in a later request: made in process, as `bouncer keys create` makes it (src/cli/keys.ts:
 * newApiKey, then the store's insert), without a `bouncer` process (~1 s of CPU) each. The command's
 * own output is asserted in 'bouncer keys create' below.
 */
async function createKey(principal: string, options: { expiresInMs?: number; keysDb?: string } = {}): Promise<{ key: string; id: string }> {
  const created = newApiKey()
  const now = Date.now()
  const store = openApiKeyStore({ type: 'sqlite', path: options.keysDb ?? join(dir, 'keys.db') })
  try {
    await store.insert({
      id: created.id, principal, description: null, hash: created.hash,
      createdAt: now, expiresAt: options.expiresInMs === undefined ? null : now + options.expiresInMs, revokedAt: null, lastUsedAt: null,
    })
  } finally {
    await store.close()
  }
  expect(created.key).toMatch(KEY)
  return { key: created.key, id: created.key.slice(3, 19) }
}

async function call(base: string, path: string, headers: Record<string, string> = {}) {
  const res = await request(`${base}${path}`, { headers })
  const text = await res.body.text()
  const body = text.startsWith('{') ? (JSON.parse(text) as Record<string, unknown>) : {}
  return { status: res.statusCode, headers: res.headers, body, text }
}

async function recordOf(requestId: string): Promise<AuditRecord> {
  let found: AuditRecord | undefined
  await waitFor(async () => {
    found = (await searchAudit({ type: 'sqlite', path: auditDb }, { limit: 500 }).catch(() => [])).find((r) => r.request_id === requestId)
    return found !== undefined
  }, `the audit record of ${requestId}`)
  return found as AuditRecord
}

describe('bouncer keys create', () => {
  it('prints the key once on stdout, and keys list never shows it or its hash', async () => {
    const created = await runCliInProcess(['keys', 'create', '--config', configFile, '--principal', 'looker-list', '--description', 'Looker Studio connector', '--expires', '90d'])
    expect(created.code).toBe(0)
    expect(created.stdout).toMatch(/^bk_[0-9a-f]{16}_[0-9a-f]{64}\n$/)
    expect(created.stderr).toMatch(/created API key [0-9a-f]{16} for principal looker-list \(expires \d{4}-.*\)\. It is shown this once/)
    const key = created.stdout.trim()
    const id = key.slice(3, 19)
    const secret = key.slice(20)

    const listed = await runCliInProcess(['keys', 'list', '--config', configFile, '--json'])
    expect(listed.code).toBe(0)
    const documents = listed.stdout.trim().split('\n').map((line) => JSON.parse(line) as Record<string, unknown>)
    const mine = documents.find((d) => d.id === id)
    expect(mine).toMatchObject({ principal: 'looker-list', description: 'Looker Studio connector', status: 'active', last_used_at: null, revoked_at: null })
    expect(Object.keys(mine as object).sort()).toEqual(['created_at', 'description', 'expires_at', 'id', 'last_used_at', 'principal', 'revoked_at', 'status'])
    const table = await runCliInProcess(['keys', 'list', '--config', configFile])
    expect(table.stdout).toMatch(new RegExp(`${id}\\s+looker-list\\s+active`))
    for (const output of [listed.stdout, table.stdout, listed.stderr, table.stderr]) expect(output).not.toContain(secret)
  })

  it('refuses a bad principal, a bad duration, and a config without api_keys', async () => {
    expect((await runCliInProcess(['keys', 'create', '--config', configFile, '--principal', 'a b'])).code).toBe(2)
    expect((await runCliInProcess(['keys', 'create', '--config', configFile, '--principal', 'x', '--expires', 'soon'])).code).toBe(2)
    const bare = join(dir, 'bare.yaml')
    await writeFile(bare, 'upstreams: []\n')
    const refused = await runCliInProcess(['keys', 'list', '--config', bare])
    expect(refused).toMatchObject({ code: 1, stderr: expect.stringContaining('configures no API keys (api_keys)') })
  })
})

describe('a key over HTTP', () => {
  it('in X-API-Key reaches the upstream as its principal, and the key itself never does', async () => {
    const { key, id } = await createKey('looker-studio')
    const res = await call(gateway.url, '/data/daily', { 'x-api-key': key, 'x_api_key': key, 'x-request-id': 'api-key-1' })
    expect(res.status).toBe(200)
    const received = res.body as unknown as Received
    expect(JSON.stringify(received.headers)).not.toContain(key.slice(20))
    expect(received.headers).not.toHaveProperty('x-api-key')
    expect(received.headers).not.toHaveProperty('x_api_key')
    expect(await recordOf('api-key-1')).toMatchObject({ status: 200, decision: 'allow', credential: 'api_key', issuer: 'api-keys', subject: 'looker-studio', client_id: id, roles: ['bi-connectors'] })
  })

  it('as Authorization: Bearer bk_… too, in any case of the scheme', async () => {
    const { key } = await createKey('looker-bearer')
    for (const scheme of ['Bearer', 'bearer']) {
      const res = await call(gateway.url, '/data/x', { authorization: `${scheme} ${key}`, 'x-request-id': `api-key-bearer-${scheme}` })
      expect(res.status).toBe(200)
      expect(await recordOf(`api-key-bearer-${scheme}`)).toMatchObject({ credential: 'api_key', subject: 'looker-bearer' })
    }
  })

  it('is never forwarded, even in Authorization on a route that forwards Authorization', async () => {
    const { key } = await createKey('looker-forwarded')
    const received = (await call(gateway.url, '/forwarding/x', { authorization: `Bearer ${key}` })).body as unknown as Received
    expect(received.headers).not.toHaveProperty('authorization')
    const token = await idp.token('looker-reports')
    expect(((await call(gateway.url, '/forwarding/x', { authorization: `Bearer ${token}` })).body as unknown as Received).headers.authorization).toBe(`Bearer ${token}`)
  })

  it('authenticating the request, it lets no unchecked Authorization beside it through to the upstream (forward_authorization forwards only a verified token)', async () => {
    const { key } = await createKey('looker-beside')
    // A token nobody signed (alg none) claiming an admin: the API key decides, the token is never looked at.
    const b64 = (o: object) => Buffer.from(JSON.stringify(o)).toString('base64url')
    const forged = `${b64({ alg: 'none', typ: 'JWT' })}.${b64({ iss: idp.issuer, aud: AUDIENCE, sub: 'admin', exp: Math.floor(Date.now() / 1000) + 3600 })}.`
    const res = await call(gateway.url, '/forwarding/x', { 'x-api-key': key, authorization: `Bearer ${forged}` })
    expect(res.status).toBe(200)
    expect((res.body as unknown as Received).headers).not.toHaveProperty('authorization')
  })

  it('is refused when it is wrong, malformed, unknown, or sent twice', async () => {
    const { key } = await createKey('looker-wrong')
    const wrongSecret = `${key.slice(0, 20)}${'0'.repeat(64)}`
    const unknownId = `bk_${'0'.repeat(16)}_${key.slice(20)}`
    for (const sent of [wrongSecret, unknownId]) {
      const res = await call(gateway.url, '/data/x', { 'x-api-key': sent })
      expect(res.status).toBe(401)
      expect(res.body).toMatchObject({ code: 'api_key_invalid', detail: 'The API key is not valid.' })
      expect(res.headers['www-authenticate']).toMatch(/^Bearer error="invalid_token"/)
    }
    expect((await call(gateway.url, '/data/x', { 'x-api-key': 'bk_nope' })).body).toMatchObject({ code: 'api_key_invalid', detail: expect.stringContaining('bk_<id>_<secret>') })
    expect((await call(gateway.url, '/data/x', { 'x-api-key': key, authorization: `Bearer ${key}` })).body).toMatchObject({ code: 'bad_request' })
    const twice = await request(`${gateway.url}/data/x`, { headers: ['x-api-key', key, 'X-Api-Key', key] })
    expect(twice.statusCode).toBe(400)
    await twice.body.dump()
    // Two headers a proxy merged into one (found by an adversarial probe: 401 api_key_invalid, as if one wrong key).
    const merged = await call(gateway.url, '/data/x', { 'x-api-key': `${key}, ${unknownId}` })
    expect({ status: merged.status, body: merged.body }).toMatchObject({ status: 400, body: { code: 'bad_request', detail: 'The request\'s X-API-Key header holds 2 comma-separated values (headers merged by a proxy?): send one API key.' } })
  })

  it('expires', async () => {
    const { key } = await createKey('looker-short', { expiresInMs: 1_000 })
    expect((await call(gateway.url, '/data/x', { 'x-api-key': key })).status).toBe(200)
    await waitFor(async () => (await call(gateway.url, '/data/x', { 'x-api-key': key })).status === 401, 'the key to expire')
    expect((await call(gateway.url, '/data/x', { 'x-api-key': key })).body).toMatchObject({ code: 'api_key_invalid', detail: expect.stringMatching(/^The API key [0-9a-f]{16} expired at /) })
  })

  it('is a principal like any other: no role is 403 no_role, and limits count it', async () => {
    const stranger = await createKey('tableau-x')
    expect((await call(gateway.url, '/data/x', { 'x-api-key': stranger.key })).body).toMatchObject({ code: 'no_role', detail: expect.stringContaining('issuer "api-keys", subject "tableau-x"') })
    const { key } = await createKey('looker-limited')
    const statuses = []
    for (let i = 0; i < 4; i++) statuses.push((await call(gateway.url, '/limited', { 'x-api-key': key })).status)
    expect(statuses).toEqual([200, 200, 200, 429])
  })
})

describe('bouncer explain', () => {
  it('explains an API key principal\'s decision offline, from {"iss": "api-keys", "sub": …}', async () => {
    const allowed = await runCliInProcess(['explain', '--config', configFile, '--method', 'GET', '--path', '/data/x', '--claims', '{"iss":"api-keys","sub":"looker-studio"}'])
    expect(allowed.code, allowed.stderr).toBe(0)
    expect(allowed.stdout).toMatch(/Identity\s+issuer api-keys, subject looker-studio/)
    expect(allowed.stdout).toContain('+ bi-connectors: granted by assumed_by[0]: issuer api-keys, subject looker-*')
    const refused = await runCliInProcess(['explain', '--config', configFile, '--method', 'GET', '--path', '/data/x', '--claims', '{"iss":"api-keys","sub":"tableau"}'])
    expect(refused.code).toBe(1)
    expect(refused.stdout).toContain('403 no_role')
  })
})

describe("a route's accept list", () => {
  it('tries the kinds in order: the first one the request carries decides, a bad one is never passed over', async () => {
    const { key } = await createKey('looker-order')
    const token = await idp.token('looker-reports')
    // api_key first: the key decides, whatever the bearer token is.
    const keyFirst = await call(gateway.url, '/data/x', { 'x-api-key': key, authorization: 'Bearer not-a-jwt', 'x-request-id': 'order-1' })
    expect(keyFirst.status).toBe(200)
    expect(await recordOf('order-1')).toMatchObject({ credential: 'api_key' })
    // bearer first: the (bad) bearer token decides; the good key does not rescue it.
    expect((await call(gateway.url, '/either/x', { 'x-api-key': key, authorization: 'Bearer not-a-jwt' })).body).toMatchObject({ code: 'malformed_token' })
    const tokenFirst = await call(gateway.url, '/either/x', { 'x-api-key': `${key.slice(0, 20)}${'0'.repeat(64)}`, authorization: `Bearer ${token}`, 'x-request-id': 'order-2' })
    expect(tokenFirst.status).toBe(200)
    expect(await recordOf('order-2')).toMatchObject({ credential: 'bearer', subject: 'looker-reports' })
    // Only an API key in Authorization: it is the API key's, not a bearer token to verify.
    expect((await call(gateway.url, '/either/x', { authorization: `Bearer ${key}` })).status).toBe(200)
  })

  it('a route that takes bearer tokens only says so when it gets an API key', async () => {
    const { key } = await createKey('looker-wrong-route')
    for (const headers of [{ authorization: `Bearer ${key}` }, { 'x-api-key': key }] as Array<Record<string, string>>) {
      const res = await call(gateway.url, '/jwt/x', headers)
      expect(res.status).toBe(401)
      expect(res.body).toMatchObject({ code: 'missing_token', detail: 'This route needs a bearer token (Authorization: Bearer …). The request carries an API key, which this route does not accept (accept: bearer).' })
    }
  })

  it('with nothing sent, the first kind says what is missing', async () => {
    expect((await call(gateway.url, '/keys/x')).body).toMatchObject({ code: 'missing_token', detail: 'This route needs an API key (X-API-Key: bk_…, or Authorization: Bearer bk_…).' })
    expect((await call(gateway.url, '/data/x')).body).toMatchObject({ code: 'missing_token', detail: expect.stringContaining('API key') })
    expect((await call(gateway.url, '/either/x')).body).toMatchObject({ code: 'missing_token', detail: expect.stringContaining('bearer token') })
    const token = await idp.token('looker-reports')
    expect((await call(gateway.url, '/keys/x', { authorization: `Bearer ${token}` })).body).toMatchObject({
      code: 'missing_token', detail: expect.stringContaining('carries a bearer token, which this route does not accept (accept: api_key)'),
    })
  })
})

describe('revocation', () => {
  let second: ServeProcess

  beforeAll(async () => {
    // A second gateway, its own process, sharing the key store file (not the audit log).
    const secondDir = join(dir, 'second')
    const file = join(dir, 'second.yaml')
    await writeFile(file, stringify({
      ...gatewayConfig(join(dir, 'keys.db')),
      server: { listen: '127.0.0.1:0' },
      admin: { listen: '127.0.0.1:0', token: ADMIN },
      audit: { sinks: [], spill_dir: join(secondDir, 'spill') },
    }))
    second = await startServe(['--config', file])
  })

  afterAll(async () => {
    await second?.stop()
  })

  it('bouncer keys revoke: both gateways refuse the key with api_key_revoked once api_keys.cache has passed', async () => {
    const { key, id } = await createKey('looker-revoked')
    for (const base of [gateway.url, second.url]) expect((await call(base, '/data/x', { 'x-api-key': key })).status).toBe(200)

    const revoked = await runCliInProcess(['keys', 'revoke', '--config', configFile, id])
    const revokedAt = Date.now()
    expect(revoked).toMatchObject({ code: 0, stdout: `revoked API key ${id} (principal looker-revoked): every gateway refuses it within 500 ms\n` })
    // How long until each gateway refuses it (for the record), then the bound itself: any request
    // that starts once the cache time has passed since the revocation is refused, on both.
    const seen: number[] = []
    for (const base of [gateway.url, second.url]) {
      await waitFor(async () => (await call(base, '/data/x', { 'x-api-key': key })).status === 401, 'the revocation')
      seen.push(Date.now() - revokedAt)
    }
    console.log(`revocation seen after ${seen.join(' ms and ')} ms (cache 500 ms)`)
    await new Promise((r) => setTimeout(r, Math.max(0, revokedAt + 500 - Date.now())))
    for (const base of [gateway.url, second.url]) {
      const res = await call(base, '/data/x', { 'x-api-key': key })
      expect(res.status).toBe(401)
      expect(res.body).toMatchObject({ code: 'api_key_revoked', detail: expect.stringMatching(new RegExp(`^The API key ${id} was revoked at \\d{4}-`)) })
    }
    expect((await runCliInProcess(['keys', 'revoke', '--config', configFile, key])).stdout).toContain(`API key ${id} (principal looker-revoked) was already revoked at`)
    expect(await runCliInProcess(['keys', 'revoke', '--config', configFile, '0123456789abcdef'])).toMatchObject({ code: 1, stderr: 'bouncer: no API key 0123456789abcdef\n' })
    expect((await runCliInProcess(['keys', 'revoke', '--config', configFile, 'nope'])).code).toBe(2)
  })

  it('DELETE /api/keys/{id} on one gateway: refused there at once, and by the other', async () => {
    const { key, id } = await createKey('looker-admin-revoked')
    for (const base of [gateway.url, second.url]) expect((await call(base, '/data/x', { 'x-api-key': key })).status).toBe(200)
    const res = await request(`${second.adminUrl}/api/keys/${id}`, { method: 'DELETE', headers: { authorization: `Bearer ${ADMIN}` } })
    expect(res.statusCode).toBe(200)
    expect(await res.body.json()).toMatchObject({ id, principal: 'looker-admin-revoked', status: 'revoked' })
    expect((await call(second.url, '/data/x', { 'x-api-key': key })).body).toMatchObject({ code: 'api_key_revoked' })
    await waitFor(async () => (await call(gateway.url, '/data/x', { 'x-api-key': key })).status === 401, 'the revocation on the other gateway')
  })

  it('the last-used time is kept: written by the gateway that saw the use, at the latest when it stops', async () => {
    const { key, id } = await createKey('looker-used')
    const before = Date.now()
    expect((await call(second.url, '/data/x', { 'x-api-key': key })).status).toBe(200)
    await second.stop()
    const listed = await runCliInProcess(['keys', 'list', '--config', configFile, '--json'])
    const document = listed.stdout.trim().split('\n').map((line) => JSON.parse(line) as { id: string; last_used_at: string | null }).find((d) => d.id === id)
    expect(Date.parse(document?.last_used_at ?? '')).toBeGreaterThanOrEqual(before)
  })
})

describe('last-used times that cannot be written', () => {
  it('are a background failure (api_key_usage), kept for the next write; keys keep working', async () => {
    const keysDb = join(dir, 'faulty-keys.db')
    const { key } = await createKey('looker-faulty', { keysDb })
    // A store that refuses to record a use (as a full disk or a read-only replica would).
    const db = new DatabaseSync(keysDb)
    db.exec("CREATE TRIGGER no_use BEFORE UPDATE OF last_used_at ON api_keys BEGIN SELECT RAISE(ABORT, 'read-only'); END")
    const faulty = await startTestGateway({ ...gatewayConfig(keysDb), admin: {} })
    try {
      expect((await call(faulty.url, '/keys/x', { 'x-api-key': key })).status).toBe(200)
      await waitForMetric(faulty.adminUrl, 'bouncer_background_failures_total{task="api_key_usage"}', 1, 20_000)
      expect(faulty.logs.join('')).toContain('read-only')
      expect((await call(faulty.url, '/keys/x', { 'x-api-key': key })).status).toBe(200)
      db.exec('DROP TRIGGER no_use')
    } finally {
      await faulty.close() // the kept time is written at shutdown
    }
    const row = db.prepare('SELECT last_used_at FROM api_keys').get() as { last_used_at: number | null }
    db.close()
    expect(row.last_used_at).toBeGreaterThan(0)
  })

  it('a store whose write lock another process holds: the write fails at once and is kept, the gateway does not stand still', async () => {
    // SQLite waits for a lock synchronously: the batch's write waited its 5 s busy timeout on the
    // event loop, every flush, and every request of the gateway waited with it.
    const keysDb = join(dir, 'locked-keys.db')
    const { key } = await createKey('looker-locked', { keysDb })
    const gateway = await startTestGateway({ ...gatewayConfig(keysDb), admin: {} })
    const other = new DatabaseSync(keysDb) // as another process: `bouncer keys`, an operator's sqlite3
    const stalls = monitorEventLoopDelay({ resolution: 10 })
    try {
      expect((await call(gateway.url, '/keys/x', { 'x-api-key': key })).status).toBe(200)
      other.exec('PRAGMA busy_timeout = 0; BEGIN IMMEDIATE')
      stalls.enable()
      await waitForMetric(gateway.adminUrl, 'bouncer_background_failures_total{task="api_key_usage"}', 1, 20_000)
      stalls.disable()
      expect(stalls.max / 1e6).toBeLessThan(1_000) // ms; it was the busy timeout, 5,000
      other.exec('COMMIT')
    } finally {
      if (other.isTransaction) other.exec('ROLLBACK')
      await gateway.close() // the kept time is written at shutdown
    }
    const row = other.prepare('SELECT last_used_at FROM api_keys').get() as { last_used_at: number | null }
    other.close()
    expect(row.last_used_at).toBeGreaterThan(0)
  })
})

describe('a store file that is not an API key store (check cannot tell: it is a file)', () => {
  it('a reload naming it is refused with the reason at its line, the running config keeps serving; serve refuses to start on it', async () => {
    const notAStore = join(dir, 'notes.txt')
    await writeFile(notAStore, 'meeting notes, not a database\n')
    const open = { admin: { token: ADMIN }, upstreams: [{ name: 'api', url: upstream.url }], routes: [{ id: 'open', path: '/open', upstream: 'api', public: true }] }
    const running = await startTestGateway(open)
    try {
      await running.writeConfig({ ...open, api_keys: { store: { type: 'sqlite', path: notAStore } } })
      const res = await request(`${running.adminUrl}/api/reload`, { method: 'POST', headers: { authorization: `Bearer ${ADMIN}` } })
      // 14:5: the store map as writeConfig lays it out (api_keys after routes).
      const line = `${running.file}:14:5: api_keys.store: ${notAStore} is not an API key store: file is not a database`
      expect({ status: res.statusCode, body: await res.body.json() }).toEqual({ status: 422, body: { ok: false, errors: [line] } })
      expect(running.logs.join('')).toContain('config reload refused: the running config keeps serving')
      expect((await call(running.url, '/open')).status).toBe(200)
      expect(running.state.runtime.config.api_keys).toBeUndefined()

      const served = await runCli(['serve', '--config', running.file])
      expect(served).toEqual({ code: 1, stdout: '', stderr: `${line}\nbouncer: refusing to start: ${running.file} has 1 error\n` })
    } finally {
      await running.close()
    }
  })
})
