// Records that share their millisecond and their seq (chains share seqs: server.workers, the command
// line's) were listed in one order by SQLite and in another by PostgreSQL: PostgreSQL ordered them
// by id, SQLite as they were written. Each was stable (aud4-search-ties), but a log moved from one
// sink to the other, or read through both, listed them differently. Both order them by id now, and
// SQLite's plan still reads the time index, sorting only each millisecond's records.
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { DatabaseSync } from 'node:sqlite'
import { afterAll, beforeAll, expect, it } from 'vitest'
import { chain, GENESIS_HASH, type RecordInput } from '../../src/audit/record.ts'
import { searchAudit, sqliteSearch, type AuditQuery, type AuditSource } from '../../src/audit/search.ts'
import type { StoredRow } from '../../src/audit/sinks/sink.ts'
import { createPostgresSink } from '../../src/audit/sinks/postgres.ts'
import { createSqliteSink } from '../../src/audit/sinks/sqlite.ts'
import { dropSchema, SHARED_POSTGRES, uniqueSchema } from '../helpers/postgres.ts'

const TIME = Date.now() - 60_000
/** Written in this order; their ids sort in another (the first digit), neither it nor its reverse. */
const CHAINS = [['aud5-a', 2], ['aud5-b', 0], ['aud5-c', 3], ['aud5-d', 1]] as const
const PER_CHAIN = 6
let dir: string
let path: string
const schema = uniqueSchema('aud5order')
let sqlite: AuditSource
let postgres: AuditSource

/** Each chain's records two to a millisecond: each (millisecond, seq) is held by four records. */
function rows(): StoredRow[] {
  const out: StoredRow[] = []
  for (const [name, digit] of CHAINS) {
    let prev = GENESIS_HASH
    for (let seq = 1; seq <= PER_CHAIN; seq++) {
      const input: RecordInput = {
        id: `${digit}${seq}-aud5-${name}`, time: new Date(TIME + Math.floor(seq / 2)).toISOString(), request_id: `q-${name}-${seq}`, method: 'GET', path: '/x',
        route: seq % 2 === 0 ? 'even' : 'odd', status: seq % 3 === 0 ? 403 : 200, decision: seq % 3 === 0 ? 'deny' : 'allow', statement: 'S', issuer: null,
        subject: digit % 2 === 0 ? 'alice' : 'bob', client_id: null, roles: [], source_ip: '10.0.0.1', upstream: 'api', upstream_status: 200, duration_ms: 1, bytes_in: 0, bytes_out: 2,
      }
      const record = chain(input, prev)
      prev = record.hash
      out.push({ chain: name, seq, record })
    }
  }
  return out
}

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'aud5-order-'))
  path = join(dir, 'audit.db')
  for (const sink of [createSqliteSink(path, { durable: false }), createPostgresSink({ url: SHARED_POSTGRES, schema })]) {
    await sink.open()
    // A batch per chain: SQLite's rowids follow the chains' order, not their ids'.
    for (const [name] of CHAINS) await sink.write(rows().filter((r) => r.chain === name))
    await sink.close()
  }
  sqlite = { type: 'sqlite', path }
  postgres = { type: 'postgres', url: SHARED_POSTGRES, schema }
}, 30_000)

afterAll(async () => {
  await dropSchema(SHARED_POSTGRES, schema)
  await rm(dir, { recursive: true, force: true })
})

const QUERIES: Array<[string, AuditQuery]> = [
  ['all', { limit: 100 }],
  ['a page', { limit: 7, offset: 5 }],
  ['a time range', { limit: 100, sinceMs: TIME + 1, untilMs: TIME + 2 }],
  ['principal', { limit: 100, principal: 'alice' }],
  ['route', { limit: 100, route: 'even' }],
  ['refusals', { limit: 100, decision: 'deny' }],
  ['status', { limit: 100, status: 200 }],
]

it('lists records that share their millisecond and seq in the same order on SQLite and PostgreSQL', async () => {
  for (const [name, query] of QUERIES) {
    const fromSqlite = (await searchAudit(sqlite, query)).map((r) => r.id)
    const fromPostgres = (await searchAudit(postgres, query)).map((r) => r.id)
    expect(fromSqlite.length, name).toBeGreaterThan(0)
    expect(fromSqlite, name).toEqual(fromPostgres)
  }
  // Newest first, then seq, then id, last first: the four records of the newest millisecond and seq.
  expect((await searchAudit(sqlite, { limit: 4 })).map((r) => r.id)).toEqual(['36-aud5-aud5-c', '26-aud5-aud5-a', '16-aud5-aud5-d', '06-aud5-aud5-b'])
})

it('reads SQLite by an index in time order, sorting only the records of one millisecond, for every filter', () => {
  const db = new DatabaseSync(path, { readOnly: true })
  try {
    const shapes: AuditQuery[] = [
      ...QUERIES.map(([, q]) => q), { limit: 1001 }, { limit: 50, offset: 100_000 }, { limit: 50, untilMs: TIME }, { limit: 50, sinceMs: TIME },
      { limit: 50, actor: 'agent' }, { limit: 50, decision: 'allow' }, { limit: 50, decision: 'error', principal: 'bob' },
    ]
    for (const query of shapes) {
      const { sql, params } = sqliteSearch(query)
      const plan = (db.prepare(`EXPLAIN QUERY PLAN ${sql}`).all(...params) as Array<{ detail: string }>).map((row) => row.detail)
      // A whole sort ("USE TEMP B-TREE FOR ORDER BY") reads every matching record for each page.
      expect(plan, JSON.stringify(query)).toEqual([expect.stringMatching(/^(SCAN|SEARCH) audit_records USING INDEX /), 'USE TEMP B-TREE FOR LAST 2 TERMS OF ORDER BY'])
    }
  } finally {
    db.close()
  }
})
