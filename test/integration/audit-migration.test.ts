// Upgrading a gateway whose audit log was written before the field table (Bouncer 0.1.0, the
// fixture in fixtures/audit-0.1): its SQLite file and a PostgreSQL schema made with 0.1.0's DDL are
// opened by today's gateway, which adds the new columns in place, replays what 0.1.0 left in a
// spill file, and continues the same chain. Old records read as null in the new fields and still
// verify; new records carry them and verify too; opening the log again changes nothing.
import { copyFileSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs'
import { mkdtemp, rm } from 'node:fs/promises'
import { DatabaseSync } from 'node:sqlite'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import pg from 'pg'
import { request } from 'undici'
import { stringify } from 'yaml'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { ADDED_FIELDS } from '../../src/audit/fields.ts'
import { AUDIT_FIELDS, GENESIS_HASH, type AuditRecord } from '../../src/audit/record.ts'
import { searchAudit, type AuditSource } from '../../src/audit/search.ts'
import { migratePostgres } from '../../src/audit/sinks/postgres.ts'
import type { StoredRow } from '../../src/audit/sinks/sink.ts'
import { openSqlite } from '../../src/audit/sinks/sqlite.ts'
import { spillFor } from '../../src/audit/spill.ts'
import { verifyAudit } from '../../src/audit/verify.ts'
import { runCliInProcess } from '../helpers/cli-in-process.ts'
import { startTestGateway } from '../helpers/gateway.ts'
import { AUDIENCE, startIdentityProvider, type TestIdentityProvider } from '../helpers/identity-provider.ts'
import { dropSchema, SHARED_POSTGRES, uniqueSchema } from '../helpers/postgres.ts'
import { startUpstream, type TestUpstream } from '../helpers/upstream.ts'
import { waitFor } from '../helpers/wait.ts'

const FIXTURE = fileURLToPath(new URL('./fixtures/audit-0.1/', import.meta.url))
const OLD_STATE = JSON.parse(readFileSync(join(FIXTURE, 'chain.json'), 'utf8')) as { chain: string; seq: number; hash: string }
const OLD_SPILL_LINES = readFileSync(join(FIXTURE, 'spill.ndjson'), 'utf8').trim().split('\n')
const ADDED = ADDED_FIELDS.map((field) => field.name)
const NULLS = Object.fromEntries(ADDED.map((name) => [name, null]))

let dir: string
let idp: TestIdentityProvider
let upstream: TestUpstream

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'bouncer-audit-migration-'))
  idp = await startIdentityProvider()
  upstream = await startUpstream()
})
afterAll(async () => {
  await upstream.close()
  await idp.stop()
  await rm(dir, { recursive: true, force: true })
})

/** A gateway of today on an older log: records are kept (retention would otherwise take the fixture's). */
function gatewayConfig(sink: Record<string, unknown>, spillDir: string, instance: string) {
  return {
    audit: { sinks: [sink], spill_dir: spillDir, flush_interval: '10ms', retention: '3650d', instance_id: instance },
    issuers: [{ name: 'corp', issuer: idp.issuer, audiences: [AUDIENCE] }],
    roles: [{ name: 'reports', assumed_by: [{ issuer: 'corp', subject: 'looker-*' }], policies: ['read'] }],
    policies: [{ name: 'read', statements: [{ sid: 'ReadReports', effect: 'allow', actions: ['GET'], routes: ['reports'] }] }],
    upstreams: [{ name: 'api', url: upstream.url }],
    routes: [{ id: 'reports', path: '/reports/*', upstream: 'api' }, { id: 'open', path: '/open/*', upstream: 'api', public: true }],
  }
}

/** A bearer request, a public one, and one refused before it went upstream. */
async function sendNewRequests(url: string, prefix: string): Promise<void> {
  const token = await idp.token('looker-reports')
  const send = async (path: string, id: string, headers: Record<string, string> = {}) =>
    (await request(`${url}${path}`, { headers: { 'x-request-id': `${prefix}-${id}`, ...headers } })).body.dump()
  await send('/reports/daily', 'bearer', { authorization: `Bearer ${token}` })
  await send('/open/x', 'public')
  await send('/reports/daily', 'refused')
}

/** The chain as 0.1.0 left it, then the new records, their fields as this version fills them. */
function expectUpgradedChain(records: AuditRecord[], prefix: string, instance: string): void {
  const bySeqOrder = inChainOrder(records)
  expect(bySeqOrder).toHaveLength(records.length)
  const old = bySeqOrder.slice(0, OLD_STATE.seq)
  expect(old.map((r) => r.request_id)).toEqual(OLD_SPILL_LINES.map((line) => (JSON.parse(line) as StoredRow).record.request_id))
  for (const record of old) expect(record).toMatchObject(NULLS)
  const fresh = bySeqOrder.slice(OLD_STATE.seq)
  expect(fresh[0]?.prev_hash).toBe(OLD_STATE.hash) // the same chain, continued
  const byId = Object.fromEntries(fresh.map((r) => [r.request_id, r]))
  expect(byId[`${prefix}-bearer`]).toMatchObject({ status: 200, credential: 'bearer', attempts: 1, instance, actor: null, tool: null, args_sha256: null })
  expect(byId[`${prefix}-public`]).toMatchObject({ status: 200, credential: null, attempts: 1, instance })
  expect(byId[`${prefix}-refused`]).toMatchObject({ status: 401, credential: null, attempts: null, instance })
}

/** Records from the first of the chain, each followed by the one that names its hash. */
function inChainOrder(records: AuditRecord[]): AuditRecord[] {
  const next = new Map(records.map((r) => [r.prev_hash, r]))
  const out: AuditRecord[] = []
  for (let r = next.get(GENESIS_HASH); r; r = next.get(r.hash)) out.push(r)
  return out
}

describe('a SQLite audit log written by 0.1.0', () => {
  it('reads as null in the new fields, gains their columns in place, and its chain goes on and verifies', { timeout: 60_000 }, async () => {
    const path = join(dir, 'audit.db')
    const spillDir = join(dir, 'spill')
    copyFileSync(join(FIXTURE, 'audit.db'), path)
    mkdirSync(spillDir)
    copyFileSync(join(FIXTURE, 'chain.json'), join(spillDir, 'chain.json'))
    const source: AuditSource = { type: 'sqlite', path }

    // Before any gateway of this version opened it: read-only readers already see the new fields.
    expect(await verifyAudit(source)).toMatchObject({ ok: true, checked: 7, chains: 1 })
    const config = join(dir, 'read.yaml')
    writeFileSync(config, stringify({ audit: { sinks: [{ type: 'sqlite', path }] } }))
    const json = await runCliInProcess(['audit', '--config', config, '--json', '--limit', '10'])
    expect(json.code).toBe(0)
    const printed = json.stdout.trim().split('\n').map((line) => JSON.parse(line) as Record<string, unknown>)
    expect(printed).toHaveLength(7)
    for (const record of printed) {
      expect(Object.keys(record)).toEqual(AUDIT_FIELDS)
      expect(record).toMatchObject(NULLS)
    }
    // A filter on an added field finds nothing there (its column does not exist yet): an internal error before.
    const byActor = await runCliInProcess(['audit', '--config', config, '--json', '--actor', 'bob'])
    expect({ code: byActor.code, stdout: byActor.stdout, stderr: byActor.stderr }).toEqual({ code: 0, stdout: '', stderr: expect.not.stringContaining('internal error') })

    const gateway = await startTestGateway(gatewayConfig({ type: 'sqlite', path }, spillDir, 'gw-sqlite-1'))
    await sendNewRequests(gateway.url, 'sqlite')
    await waitFor(async () => (await searchAudit(source, { limit: 20 })).length === 10, 'the three new records')
    await gateway.close()

    expect(columnsOf(path)).toEqual(expect.arrayContaining(ADDED))
    expect(pageSizeOf(path)).toBe(4096) // an existing log keeps its pages (a new one gets 16 KB)
    const result = await verifyAudit(source)
    expect(result).toMatchObject({ ok: true, checked: 10, chains: 1, problems: [], restarts: [] })
    expectUpgradedChain(await searchAudit(source, { limit: 20 }), 'sqlite', 'gw-sqlite-1')

    // Idempotent: opening the migrated log again adds nothing and breaks nothing.
    const before = columnsOf(path)
    openSqlite(path).close()
    openSqlite(path).close()
    expect(columnsOf(path)).toEqual(before)
    expect(await verifyAudit(source)).toMatchObject({ ok: true, checked: 10 })
  })
})

function pageSizeOf(path: string): number {
  const db = new DatabaseSync(path, { readOnly: true, timeout: 5000 })
  try {
    return (db.prepare('PRAGMA page_size').get() as { page_size: number }).page_size
  } finally {
    db.close()
  }
}

function columnsOf(path: string): string[] {
  const db = new DatabaseSync(path, { readOnly: true, timeout: 5000 })
  try {
    return (db.prepare('PRAGMA table_info(audit_records)').all() as Array<{ name: string }>).map((column) => column.name)
  } finally {
    db.close()
  }
}

/** The schema as 0.1.0 created it (src/audit/sinks/postgres.ts at c0772f0, migrations 1 and 2), copied unchanged. */
function oldPostgresSchema(schema: string): string {
  return `
    CREATE SCHEMA ${schema};
    CREATE TABLE ${schema}.audit_meta (version INTEGER NOT NULL);
    INSERT INTO ${schema}.audit_meta (version) VALUES (2);
    CREATE TABLE ${schema}.audit_records (
      chain TEXT NOT NULL, seq BIGINT NOT NULL,
      id TEXT NOT NULL, time TIMESTAMPTZ NOT NULL, request_id TEXT, trace_id TEXT, method TEXT, path TEXT, route TEXT,
      status INTEGER, decision TEXT, code TEXT, detail TEXT, statement TEXT, issuer TEXT, subject TEXT,
      client_id TEXT, roles JSONB, source_ip TEXT, user_agent TEXT, upstream TEXT, upstream_status INTEGER,
      duration_ms DOUBLE PRECISION, bytes_in BIGINT, bytes_out BIGINT, "limit" TEXT, prev_hash TEXT NOT NULL, hash TEXT NOT NULL,
      PRIMARY KEY (chain, seq)
    );
    CREATE INDEX audit_time ON ${schema}.audit_records (time);
    CREATE INDEX audit_subject ON ${schema}.audit_records (subject, time);
    CREATE INDEX audit_route ON ${schema}.audit_records (route, time);
    CREATE INDEX audit_decision ON ${schema}.audit_records (decision, time);
    CREATE TABLE ${schema}.audit_checkpoint (chain TEXT PRIMARY KEY, seq BIGINT NOT NULL, hash TEXT NOT NULL);
    CREATE TABLE ${schema}.audit_head_checkpoints (
      chain TEXT PRIMARY KEY, count BIGINT NOT NULL, id TEXT NOT NULL, hash TEXT NOT NULL, time TEXT NOT NULL, kid TEXT NOT NULL, sig TEXT NOT NULL
    );`
}

const OLD_COLUMNS = [
  'chain', 'seq', 'id', 'time', 'request_id', 'trace_id', 'method', 'path', 'route', 'status', 'decision', 'code', 'detail', 'statement',
  'issuer', 'subject', 'client_id', 'roles', 'source_ip', 'user_agent', 'upstream', 'upstream_status', 'duration_ms', 'bytes_in',
  'bytes_out', 'limit', 'prev_hash', 'hash',
]

/** Rows as 0.1.0's PostgreSQL sink stored them (roles as JSONB), for the first `upTo` records. */
async function insertOldRows(client: pg.Client, schema: string, upTo: number): Promise<void> {
  for (const line of OLD_SPILL_LINES.slice(0, upTo)) {
    const { chain, seq, record } = JSON.parse(line) as StoredRow
    const values = OLD_COLUMNS.map((column) => (column === 'chain' ? chain : column === 'seq' ? seq : column === 'roles' ? JSON.stringify(record.roles) : record[column as keyof AuditRecord]))
    await client.query(
      `INSERT INTO ${schema}.audit_records (${OLD_COLUMNS.map((c) => `"${c}"`).join(', ')}) VALUES (${OLD_COLUMNS.map((c, i) => `$${i + 1}${c === 'roles' ? '::jsonb' : ''}`).join(', ')})`,
      values,
    )
  }
}

async function pgColumns(client: pg.Client, schema: string): Promise<string[]> {
  const { rows } = await client.query('SELECT column_name FROM information_schema.columns WHERE table_schema = $1 AND table_name = $2 ORDER BY ordinal_position', [schema, 'audit_records'])
  return (rows as Array<{ column_name: string }>).map((row) => row.column_name)
}

describe('a PostgreSQL schema made by 0.1.0', () => {
  it('gains the new columns in place; 0.1.0\'s records and spill lines, and new records, make one chain that verifies', { timeout: 60_000 }, async () => {
    const schema = uniqueSchema('migration')
    const client = new pg.Client({ connectionString: SHARED_POSTGRES })
    await client.connect()
    try {
      await client.query(oldPostgresSchema(schema))
      await insertOldRows(client, schema, 4) // records 5–7 were still in the spill file when 0.1.0 stopped
      const spillDir = join(dir, 'spill-pg')
      mkdirSync(spillDir)
      copyFileSync(join(FIXTURE, 'chain.json'), join(spillDir, 'chain.json'))
      writeFileSync(spillFor(spillDir, `postgres:${schema}`).path, `${OLD_SPILL_LINES.slice(4).join('\n')}\n`)
      const source: AuditSource = { type: 'postgres', url: SHARED_POSTGRES, schema }
      expect(await verifyAudit(source)).toMatchObject({ ok: true, checked: 4 })
      expect(await searchAudit(source, { limit: 20, actor: 'bob' })).toEqual([]) // its column does not exist yet

      const gateway = await startTestGateway(gatewayConfig({ type: 'postgres', url: SHARED_POSTGRES, schema }, spillDir, 'gw-pg-1'))
      await sendNewRequests(gateway.url, 'pg')
      await waitFor(async () => (await searchAudit(source, { limit: 20 })).length === 10, 'the spilled and the new records', 20_000)
      await gateway.close()

      expect(await pgColumns(client, schema)).toEqual([...OLD_COLUMNS, ...ADDED])
      expect(await verifyAudit(source)).toMatchObject({ ok: true, checked: 10, chains: 1, problems: [], restarts: [] })
      expectUpgradedChain(await searchAudit(source, { limit: 20 }), 'pg', 'gw-pg-1')

      // Idempotent: migrating again adds nothing; the schema version is unchanged.
      await migratePostgres(client, schema)
      await migratePostgres(client, schema)
      expect(await pgColumns(client, schema)).toEqual([...OLD_COLUMNS, ...ADDED])
      expect((await client.query(`SELECT version FROM ${schema}.audit_meta`)).rows).toEqual([{ version: 4 }])
    } finally {
      await client.end()
      await dropSchema(SHARED_POSTGRES, schema)
    }
  })
})
