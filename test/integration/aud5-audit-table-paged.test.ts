// `bouncer audit` (the table) read every record its --limit allowed before printing its first line,
// to size its columns: `--json` read a page at a time (audit-cli-json-paged), the table held the
// whole search. It now reads a page at a time too, its columns as wide as the first page's cells.
// Shown on both queryable sinks without measuring memory: once the command's first lines are out,
// the log's oldest records are deleted; a command that had read its whole search already prints
// them, one that reads page by page finds them gone when it gets there.
import { spawn } from 'node:child_process'
import { once } from 'node:events'
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { DatabaseSync } from 'node:sqlite'
import pg from 'pg'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { stringify } from 'yaml'
import { chain, GENESIS_HASH } from '../../src/audit/record.ts'
import { columnOf, FIELD_SPECS } from '../../src/audit/fields.ts'
import { createPostgresSink } from '../../src/audit/sinks/postgres.ts'
import { createSqliteSink } from '../../src/audit/sinks/sqlite.ts'
import type { AuditSink } from '../../src/audit/sinks/sink.ts'
import { copyFirstRecord } from '../helpers/audit.ts'
import { BIN } from '../helpers/cli.ts'
import { dropSchema, SHARED_POSTGRES, uniqueSchema } from '../helpers/postgres.ts'

/** Five pages. Rows are ~250 bytes, so the first page (~250 KB) cannot all sit in the pipe and the buffers on both sides of it. */
const RECORDS = 5_000
/** Records after this one (in the search's order) are deleted once the first lines are out. */
const KEPT = 3_000
const TIME = Date.now() - 3_600_000

let dir: string
const schema = uniqueSchema('aud5table')

/** The newest record: its copies (older by 1 ms each) fill the log. Long cells, so a page is larger than the pipe. */
async function writeFirst(sink: AuditSink): Promise<void> {
  const record = chain({
    id: '00000000-0000-4000-8000-0000000a0d05', time: new Date(TIME).toISOString(), request_id: 'r1', method: 'GET', path: `/${'p'.repeat(70)}`,
    route: `reports.${'r'.repeat(40)}`, status: 403, decision: 'deny', code: 'policy_denied', statement: `S${'s'.repeat(40)}`, subject: `looker-${'u'.repeat(60)}`,
    roles: [], source_ip: '127.0.0.1', duration_ms: 1, bytes_in: 0, bytes_out: 0,
  }, GENESIS_HASH)
  await sink.open()
  await sink.write([{ chain: 'aud5', seq: 1, record }])
  await sink.close()
}

/** As copyFirstRecord does for SQLite: seq n (from 2) is the first record n ms older. */
async function copyFirstPgRecord(records: number): Promise<void> {
  const client = new pg.Client({ connectionString: SHARED_POSTGRES })
  await client.connect()
  try {
    const columns = ['chain', 'seq', ...FIELD_SPECS.map(columnOf)]
    const values = columns.map((c) => ({ seq: 'n.i', '"id"': `id || '-' || n.i`, '"time"': `time - n.i * interval '1 millisecond'` })[c] ?? c)
    await client.query(`INSERT INTO ${schema}.audit_records (${columns.join(', ')})
      SELECT ${values.join(', ')} FROM ${schema}.audit_records, generate_series(2, ${records}) AS n(i) WHERE seq = 1`)
  } finally {
    await client.end()
  }
}

const configs: Record<'SQLite' | 'PostgreSQL', { config: string; deleteOldest: () => Promise<void> }> = {} as never

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'aud5-table-'))
  const log = join(dir, 'audit.db')
  await writeFirst(createSqliteSink(log, { durable: false }))
  copyFirstRecord(log, RECORDS)
  await writeFirst(createPostgresSink({ url: SHARED_POSTGRES, schema }))
  await copyFirstPgRecord(RECORDS)
  const rest = { upstreams: [{ name: 'api', url: 'http://127.0.0.1:9' }], routes: [{ id: 'all', path: '/*', upstream: 'api', public: true }] }
  const sqliteConfig = join(dir, 'sqlite.yaml')
  await writeFile(sqliteConfig, stringify({ audit: { sinks: [{ type: 'sqlite', path: log }] }, ...rest }))
  const pgConfig = join(dir, 'postgres.yaml')
  await writeFile(pgConfig, stringify({ audit: { sinks: [{ type: 'postgres', url: SHARED_POSTGRES, schema }] }, ...rest }))
  configs.SQLite = {
    config: sqliteConfig,
    async deleteOldest() {
      const db = new DatabaseSync(log)
      db.exec('PRAGMA busy_timeout = 5000')
      db.prepare('DELETE FROM audit_records WHERE seq > ?').run(KEPT)
      db.close()
    },
  }
  configs.PostgreSQL = {
    config: pgConfig,
    async deleteOldest() {
      const client = new pg.Client({ connectionString: SHARED_POSTGRES })
      await client.connect()
      await client.query(`DELETE FROM ${schema}.audit_records WHERE seq > $1`, [KEPT])
      await client.end()
    },
  }
}, 60_000)

afterAll(async () => {
  await dropSchema(SHARED_POSTGRES, schema)
  await rm(dir, { recursive: true, force: true })
})

describe.each(['SQLite', 'PostgreSQL'] as const)('bouncer audit (the table) on %s', (name) => {
  it('prints its first page before reading the next, in the first page\'s column widths', async () => {
    const { config, deleteOldest } = configs[name]
    const child = spawn(process.execPath, [BIN, 'audit', '--limit', String(RECORDS), '--config', config], { stdio: ['ignore', 'pipe', 'pipe'] })
    let stderr = ''
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()))
    const exited = once(child, 'exit')
    const chunks: Buffer[] = []
    let deleted: Promise<void> | null = null
    child.stdout.on('data', (chunk: Buffer) => {
      chunks.push(chunk)
      if (deleted !== null) return
      // The command waits on its pipe meanwhile: it has printed (and so read) a part of its first page at most.
      child.stdout.pause()
      deleted = deleteOldest().finally(() => child.stdout.resume())
    })
    const [code] = (await exited) as [number | null]
    await deleted
    expect({ code, stderr }).toEqual({ code: 0, stderr: '' })
    const lines = Buffer.concat(chunks).toString().trimEnd().split('\n')
    const [header, ...rows] = lines as [string, ...string[]]
    expect(header).toMatch(/^TIME \(UTC\) +STATUS +DECISION +REQUEST +ROUTE +SUBJECT +WHY$/)
    // Read page by page: the records deleted after the first lines were out are not there.
    expect(rows).toHaveLength(KEPT)
    expect(rows[0]).toContain(new Date(TIME).toISOString().replace('T', ' ').replace('Z', ''))
    expect(rows.at(-1)).toContain(new Date(TIME - KEPT).toISOString().replace('T', ' ').replace('Z', ''))
    // Every page in the first page's widths: each column starts where its header does.
    const starts = ['STATUS', 'DECISION', 'REQUEST', 'ROUTE', 'SUBJECT', 'WHY'].map((h) => header.indexOf(h))
    const cells = ['403', 'deny', 'GET /', 'reports.', 'looker-', 'policy_denied (S']
    for (const row of [rows[0], rows[1_500], rows.at(-1)] as string[]) {
      expect(starts.map((at, i) => row.slice(at).startsWith(cells[i] as string))).toEqual(starts.map(() => true))
    }
  }, 60_000)
})
