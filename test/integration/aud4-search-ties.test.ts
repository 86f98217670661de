// Found by the audit probe (aud4): with several chains (server.workers, or a command line's chain
// beside the gateway's), two records can share both their millisecond and their seq, and a search
// ordered by (time, seq) alone left their order to the database. PostgreSQL's top-N sort orders such
// ties by its LIMIT, so the console's cursor pages (and `bouncer audit --json`, and the export) skipped
// some of those records and showed others twice (45 of 48 read, pages of one). SQLite is held to it too.
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, expect, it } from 'vitest'
import { pageAfter, pageAt, type AuditCursor } from '../../src/audit/pages.ts'
import { chain, GENESIS_HASH, type AuditRecord, type RecordInput } from '../../src/audit/record.ts'
import { searchAudit, type AuditQuery, type AuditSource } from '../../src/audit/search.ts'
import type { StoredRow } from '../../src/audit/sinks/sink.ts'
import { createPostgresSink } from '../../src/audit/sinks/postgres.ts'
import { createSqliteSink } from '../../src/audit/sinks/sqlite.ts'
import { dropSchema, SHARED_POSTGRES, uniqueSchema } from '../helpers/postgres.ts'

const TIME = new Date(Date.now() - 60_000).toISOString()
const CHAINS = ['aud4-a', 'aud4-b', 'aud4-c', 'aud4-d']
const PER_CHAIN = 12
let dir: string
const schema = uniqueSchema('aud4ties')
let sources: Array<[string, AuditSource]>

/** Four chains of 12 records, every one in the same millisecond: each seq is held by four records. */
function rows(): StoredRow[] {
  const out: StoredRow[] = []
  for (const [c, name] of CHAINS.entries()) {
    let prev = GENESIS_HASH
    for (let seq = 1; seq <= PER_CHAIN; seq++) {
      const input: RecordInput = {
        id: `${c}${String(seq).padStart(2, '0')}-${(seq * 7919 + c * 104729).toString(16)}`, time: TIME, request_id: `q-${c}-${seq}`, method: 'GET', path: '/x', route: 'x',
        status: 200, decision: 'allow', statement: 'S', issuer: null, subject: null, client_id: null, roles: [], source_ip: '10.0.0.1',
        upstream: 'api', upstream_status: 200, duration_ms: 1, bytes_in: 0, bytes_out: 2,
      }
      const record = chain(input, prev)
      prev = record.hash
      out.push({ chain: name, seq, record })
    }
  }
  return out
}

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'aud4-ties-'))
  const path = join(dir, 'audit.db')
  for (const sink of [createSqliteSink(path, { durable: false }), createPostgresSink({ url: SHARED_POSTGRES, schema })]) {
    await sink.open()
    await sink.write(rows())
    await sink.close()
  }
  sources = [['SQLite', { type: 'sqlite', path }], ['PostgreSQL', { type: 'postgres', url: SHARED_POSTGRES, schema }]]
}, 30_000)

afterAll(async () => {
  await dropSchema(SHARED_POSTGRES, schema)
  await rm(dir, { recursive: true, force: true })
})

/** Every record of the search, read by cursor pages of `size`. */
async function byCursor(source: AuditSource, size: number): Promise<string[]> {
  const read = (q: AuditQuery) => searchAudit(source, q)
  const q: AuditQuery = { limit: size, sinceMs: Date.parse(TIME) - 1 }
  const seen: string[] = []
  let cursor: AuditCursor | null = null
  for (let n = 0; n < 100; n++) {
    const { rows, more }: { rows: AuditRecord[]; more: boolean } = cursor === null ? await pageAt(read, q) : await pageAfter(read, q, cursor)
    seen.push(...rows.map((r) => r.id))
    const last = rows.at(-1)
    if (!more || last === undefined) break
    cursor = { time: Date.parse(last.time), id: last.id }
  }
  return seen
}

it('pages through records that share their millisecond and seq, each once, in the order of the whole search', async () => {
  const whole: string[][] = []
  for (const [name, source] of sources) {
    const all = (await searchAudit(source, { limit: 1000 })).map((r) => r.id)
    expect(all, name).toHaveLength(CHAINS.length * PER_CHAIN)
    whole.push(all)
    for (const size of [1, 3, 5, 7]) {
      const paged = await byCursor(source, size)
      expect(paged, `${name}, pages of ${size}`).toEqual(all)
    }
    // Offset pages too: each a slice of the whole, in its order.
    for (let offset = 0; offset < all.length; offset += 5) {
      expect((await searchAudit(source, { limit: 5, offset })).map((r) => r.id), `${name}, offset ${offset}`).toEqual(all.slice(offset, offset + 5))
    }
  }
  expect([...(whole[1] as string[])].sort()).toEqual([...(whole[0] as string[])].sort())
})
