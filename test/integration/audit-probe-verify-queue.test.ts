// Found by the audit probe: the console's Verify of a SQLite log held the audit side thread for its
// whole length. node:sqlite reads synchronously, and the thread runs its jobs one after another:
// an admin API key revocation (its audit record is written there) and every console search waited
// behind it — 4-5 s behind 300,000 records, 17 s behind a million. The key was revoked at once, but
// its answer and its audit record came only once the verify had ended.
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { request } from 'undici'
import { afterAll, beforeAll, expect, it } from 'vitest'
import { GENESIS_HASH, hashOf, type AuditRecord } from '../../src/audit/record.ts'
import type { StoredRow } from '../../src/audit/sinks/sink.ts'
import { createSqliteSink } from '../../src/audit/sinks/sqlite.ts'
import { newApiKey, openApiKeyStore } from '../../src/identity/index.ts'
import { startTestGateway, type TestGateway } from '../helpers/gateway.ts'

const TOKEN = 'verify-queue-admin-token-0123456789'
/** Enough for a verify of a few seconds. */
const RECORDS = 200_000

let dir: string
let gw: TestGateway
let config: Record<string, unknown>

/** A chain of another instance's records, linked one to the next, written by the SQLite sink. */
async function writeChain(path: string): Promise<void> {
  const sink = createSqliteSink(path, { durable: false })
  await sink.open()
  const start = Date.now() - 3_600_000
  let prev = GENESIS_HASH
  let rows: StoredRow[] = []
  for (let seq = 1; seq <= RECORDS; seq++) {
    const record = {
      id: `other-${seq}`, time: new Date(start + Math.floor(seq / 100)).toISOString(), request_id: `req-${seq}`, trace_id: null, method: 'GET', path: '/reports',
      route: 'open', status: 200, decision: 'allow', code: null, detail: null, statement: null, issuer: null, subject: null, client_id: null, roles: [],
      source_ip: '127.0.0.1', user_agent: 'probe', upstream: 'api', upstream_status: 200, duration_ms: 1.5, bytes_in: 0, bytes_out: 2, limit: null,
      credential: null, actor: null, tool: null, args_sha256: null, attempts: null, instance: null, masked: null, args: null, upstream_ms: null, prev_hash: prev,
    } satisfies Omit<AuditRecord, 'hash'>
    prev = hashOf(record)
    rows.push({ chain: 'other-instance', seq, record: { ...record, hash: prev } })
    if (rows.length === 5_000) {
      await sink.write(rows)
      rows = []
    }
  }
  await sink.close()
}

/**
 * A key for `principal` in the gateway's store, as `bouncer keys create` makes it (src/cli/keys.ts:
 * newApiKey, then the store's insert), in process: the command's start cost ~0.8 s of CPU for a
 * step the tests only stand on. Its id.
 */
async function createKey(principal: string): Promise<string> {
  const created = newApiKey()
  const store = openApiKeyStore({ type: 'sqlite', path: join(dir, 'keys.db') })
  try {
    await store.insert({ id: created.id, principal, description: null, hash: created.hash, createdAt: Date.now(), expiresAt: null, revokedAt: null, lastUsedAt: null })
  } finally {
    await store.close()
  }
  return created.id
}

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'bouncer-verify-queue-'))
  await writeChain(join(dir, 'audit.db'))
  config = {
    admin: { token: TOKEN },
    audit: { sinks: [{ type: 'sqlite', path: join(dir, 'audit.db') }], spill_dir: join(dir, 'spill') },
    api_keys: { store: { type: 'sqlite', path: join(dir, 'keys.db') } },
    routes: [],
  }
  gw = await startTestGateway(config)
}, 120_000)

afterAll(async () => {
  await gw?.close()
  await rm(dir, { recursive: true, force: true })
})

const admin = (method: 'GET' | 'POST' | 'DELETE', path: string) => request(`${gw.adminUrl}${path}`, { method, headers: { authorization: `Bearer ${TOKEN}` } })

it('answers a key revocation, with its audit record, and a search while a long Verify runs', async () => {
  const id = await createKey('bob')
  await (await admin('GET', '/api/audit?limit=1')).body.dump() // the side thread started

  const asked = performance.now()
  let verified = 0
  const verifying = admin('POST', '/api/audit/verify').then(async (res) => {
    verified = performance.now() - asked
    return { status: res.statusCode, body: (await res.body.json()) as { ok: boolean; checked: number } }
  })
  const revoked = await admin('DELETE', `/api/keys/${id}`)
  const revokedIn = performance.now() - asked
  expect(revoked.statusCode).toBe(200)
  expect(await revoked.body.json()).toMatchObject({ id, status: 'revoked' })
  const searched = await admin('GET', '/api/audit?limit=5')
  const searchedIn = performance.now() - asked
  expect(searched.statusCode).toBe(200)
  expect((await searched.body.json()) as AuditRecord[]).toEqual(expect.arrayContaining([expect.objectContaining({ path: `/api/keys/${id}`, method: 'DELETE' })]))

  expect(await verifying).toMatchObject({ status: 200, body: { ok: true } })
  // Answered while the verify ran (its record among the newest), not once it had ended.
  expect(verified).toBeGreaterThan(500)
  expect(revokedIn).toBeLessThan(verified / 2)
  expect(searchedIn).toBeLessThan(verified / 2)
}, 120_000)

// The same thread ran both: reads queued before a revocation held its answer and record for as long
// as they took, and a read-only caller's console figures for a month of one route (each counted from
// every record of the range: the roll-ups have no route filter) could be queued one after another.
it('answers a key revocation, with its audit record, while the console\'s reads are queued', async () => {
  const id = await createKey('carol')

  const asked = performance.now()
  const reads = Promise.all(Array.from({ length: 16 }, () => admin('GET', '/api/overview?since=31d&route=open').then(async (res) => {
    expect(res.statusCode).toBe(200)
    await res.body.dump()
    return performance.now() - asked
  })))
  const revoked = await admin('DELETE', `/api/keys/${id}`)
  const revokedIn = performance.now() - asked
  expect(revoked.statusCode).toBe(200)
  expect(await revoked.body.json()).toMatchObject({ id, status: 'revoked' })
  const readIn = Math.max(...(await reads))
  expect(readIn).toBeGreaterThan(500)
  expect(revokedIn).toBeLessThan(readIn / 2)
  const newest = (await (await admin('GET', '/api/audit?limit=5')).body.json()) as AuditRecord[]
  expect(newest).toEqual(expect.arrayContaining([expect.objectContaining({ path: `/api/keys/${id}`, method: 'DELETE' })]))
}, 120_000)
