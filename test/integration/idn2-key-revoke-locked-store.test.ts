// A revocation through the admin API waits for another process's write lock on the SQLite key store
// without stopping the gateway: found by the identity probe (a failing dependency), the store kept
// SQLite's busy handler (busy_timeout 5 s) while serving, and that handler sleeps on the calling
// thread. While an operator's sqlite3 session, `bouncer keys` or another instance held the lock,
// DELETE /api/keys/{id} froze every request of the gateway for up to 5 s, then answered 503. It now
// waits on timers (as the session store does), the gateway serving meanwhile, and revokes once the
// lock is let go.
import { join } from 'node:path'
import { DatabaseSync } from 'node:sqlite'
import { request } from 'undici'
import { afterAll, beforeAll, expect, it } from 'vitest'
import { newApiKey } from '../../src/identity/api-keys/key.ts'
import { openSqliteKeyStore } from '../../src/identity/api-keys/sqlite-store.ts'
import { startTestGateway, type TestGateway } from '../helpers/gateway.ts'
import { startUpstream, type TestUpstream } from '../helpers/upstream.ts'

const ADMIN = 'idn2-locked-store-admin-token-0123456789'

let upstream: TestUpstream
let gateway: TestGateway
let keysDb: string

beforeAll(async () => {
  upstream = await startUpstream()
  gateway = await startTestGateway((dir) => {
    keysDb = join(dir, 'keys.db')
    return {
      admin: { token: ADMIN },
      api_keys: { store: { type: 'sqlite', path: keysDb }, cache: '100ms' },
      roles: [{ name: 'loader', assumed_by: [{ issuer: 'api-keys' }], policies: ['any'] }],
      policies: [{ name: 'any', statements: [{ sid: 'Any', effect: 'allow', actions: ['*'], routes: ['*'] }] }],
      upstreams: [{ name: 'api', url: upstream.url }],
      routes: [{ id: 'data', path: '/*', upstream: 'api', accept: ['api_key'] }],
    }
  })
})

afterAll(async () => {
  await gateway?.close()
  await upstream?.close()
})

async function withKey(key: string): Promise<{ status: number; code?: string }> {
  const res = await request(`${gateway.url}/x`, { headers: { 'x-api-key': key } })
  const text = await res.body.text()
  return { status: res.statusCode, code: res.statusCode === 200 ? undefined : (JSON.parse(text) as { code?: string }).code }
}

it('serves while a revocation waits for another process\'s write lock, then revokes', async () => {
  const created = newApiKey()
  const store = openSqliteKeyStore(keysDb)
  await store.insert({ id: created.id, principal: 'etl', description: null, hash: created.hash, createdAt: Date.now(), expiresAt: null, revokedAt: null, lastUsedAt: null })
  await store.close()
  expect(await withKey(created.key)).toEqual({ status: 200 })

  const holder = new DatabaseSync(keysDb)
  holder.exec('BEGIN IMMEDIATE') // an operator's write transaction, left open
  let revoked: { status: number } | undefined
  const revoking = request(`${gateway.adminUrl}/api/keys/${created.id}`, { method: 'DELETE', headers: { authorization: `Bearer ${ADMIN}` } })
    .then(async (res) => {
      await res.body.dump()
      revoked = { status: res.statusCode }
    })
  try {
    // Meanwhile the gateway answers, at once: the key is read (WAL readers pass a writer's lock).
    const started = Date.now()
    for (let i = 0; i < 3; i++) expect(await withKey(created.key)).toEqual({ status: 200 })
    expect(Date.now() - started).toBeLessThan(1_000)
    expect(revoked).toBeUndefined()
  } finally {
    holder.exec('ROLLBACK')
    holder.close()
  }
  await revoking
  expect(revoked).toEqual({ status: 200 })
  expect(await withKey(created.key)).toMatchObject({ status: 401, code: 'api_key_revoked' })
})
