// Found by a probe (helper): paging by a key that is not what paging needs. A key with ties lost the
// tied rows at each page's end (30 of 40 rows, 200 every time): the tie is now refused, before the
// head or by a cut stream. A float key holding Infinity or NaN got a cursor that was sealed with
// null and then refused as not the gateway's: the rest of the rows were out of reach.
import { mkdtempSync, rmSync } from 'node:fs'
import { DatabaseSync } from 'node:sqlite'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import pg from 'pg'
import { request } from 'undici'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { startTestGateway, type TestGateway } from '../helpers/gateway.ts'
import { SHARED_POSTGRES } from '../helpers/postgres.ts'

const SUFFIX = `${process.pid}_${Date.now() % 1_000_000}`
const TIES = `ds_ties_${SUFFIX}`
const LATE = `ds_late_tie_${SUFFIX}`
const FLOATS = `ds_fkeys_${SUFFIX}`
const DECIMALS = `ds_decimals_${SUFFIX}`
let gw: TestGateway
let db: pg.Client
let dir: string

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'bouncer-ties-'))
  db = new pg.Client({ connectionString: SHARED_POSTGRES })
  await db.connect()
  // 40 rows, four to each k.
  await db.query(`CREATE TABLE ${TIES} AS SELECT (g - 1) / 4 + 1 AS k, g AS v FROM generate_series(1, 40) g`)
  // 9000 rows, k unique but for rows 8192 and 8193: a page of 8192 ends between them, across batches.
  await db.query(`CREATE TABLE ${LATE} AS SELECT CASE WHEN g = 8193 THEN 8192 ELSE g END AS k FROM generate_series(1, 9000) g`)
  // 1.0 and 1.00 are one numeric value written twice: a tie, though their texts differ.
  await db.query(`CREATE TABLE ${DECIMALS} (k numeric); INSERT INTO ${DECIMALS} VALUES (1.0), (1.00), (2)`)
  await db.query(`CREATE TABLE ${FLOATS} (id float8 PRIMARY KEY)`)
  await db.query(`INSERT INTO ${FLOATS} VALUES ('-Infinity'), (1), (2), (3), ('Infinity'), ('NaN')`)
  const lite = new DatabaseSync(join(dir, 'floats.db'))
  lite.exec('CREATE TABLE fkeys (id REAL PRIMARY KEY); INSERT INTO fkeys VALUES (-1e999), (1), (2.5), (1e999)')
  lite.close()
  gw = await startTestGateway({
    datasources: [
      { name: 'warehouse', type: 'postgres', url: SHARED_POSTGRES, max_connections: 2, key: 'a-test-key-of-32-characters-long' },
      { name: 'shop', type: 'sqlite', path: join(dir, 'floats.db'), key: 'a-test-key-of-32-characters-long' },
    ],
    routes: [
      { id: 'ties', methods: ['GET'], path: '/ties', public: true, dataset: { source: 'warehouse', sql: `SELECT k, v FROM ${TIES}`, page_size: 3 } },
      { id: 'ties.whole', methods: ['GET'], path: '/ties/whole', public: true, dataset: { source: 'warehouse', sql: `SELECT k, v FROM ${TIES}`, page_size: 4 } },
      { id: 'ties.pair', methods: ['GET'], path: '/ties/pair', public: true, dataset: { source: 'warehouse', sql: `SELECT k, v FROM ${TIES}`, page_size: 3, key: ['k', 'v'] } },
      { id: 'late', methods: ['GET'], path: '/late', public: true, dataset: { source: 'warehouse', sql: `SELECT k FROM ${LATE}`, page_size: 8192 } },
      { id: 'decimals', methods: ['GET'], path: '/decimals', public: true, dataset: { source: 'warehouse', sql: `SELECT k FROM ${DECIMALS}`, page_size: 1 } },
      { id: 'floats', methods: ['GET'], path: '/floats', public: true, dataset: { source: 'warehouse', sql: `SELECT id FROM ${FLOATS}`, page_size: 1 } },
      { id: 'floats.two', methods: ['GET'], path: '/floats/two', public: true, dataset: { source: 'warehouse', sql: `SELECT id FROM ${FLOATS} WHERE id > '-Infinity'`, page_size: 2 } },
      { id: 'lite.floats', methods: ['GET'], path: '/lite/floats', public: true, dataset: { source: 'shop', sql: 'SELECT id FROM fkeys', page_size: 1 } },
    ],
  })
})

afterAll(async () => {
  await gw?.close()
  await db?.query(`DROP TABLE IF EXISTS ${TIES}, ${LATE}, ${FLOATS}, ${DECIMALS}`)
  await db?.end()
  if (dir) rmSync(dir, { recursive: true, force: true })
})

interface Walk {
  statuses: number[]
  /** Every CSV data row, as text. */
  rows: string[]
  last: { status: number; text: string }
}

/** Follows the CSV answers' Bouncer-Next-Cursor to the end (or to the first answer that is not 200). */
async function walk(path: string): Promise<Walk> {
  const out: Walk = { statuses: [], rows: [], last: { status: 0, text: '' } }
  let cursor: string | null = null
  for (let pages = 0; pages < 50; pages++) {
    const url: string = `${gw.url}${path}?format=csv${cursor === null ? '' : `&cursor=${encodeURIComponent(cursor)}`}`
    const res = await request(url)
    const text = await res.body.text()
    out.statuses.push(res.statusCode)
    out.last = { status: res.statusCode, text }
    if (res.statusCode !== 200) return out
    out.rows.push(...text.split('\r\n').slice(1).filter(Boolean))
    cursor = (res.headers['bouncer-next-cursor'] as string | undefined) ?? null
    if (cursor === null) return out
  }
  throw new Error('paging did not end')
}

describe('a paging key with ties', () => {
  it('a tie across a page\'s end is 502 datasource_error naming the key, not a page that loses rows', async () => {
    const res = await request(`${gw.url}/ties`)
    const problem = (await res.body.json()) as { code: string; detail: string }
    expect(res.statusCode).toBe(502)
    expect(problem.code).toBe('datasource_error')
    expect(problem.detail).toBe('Two rows hold the same paging key ("k") where a page ends, so the next page would leave rows out: page by columns unique together (datasets key).')
  })

  it('ties inside pages lose nothing, and pass: every row once', async () => {
    const result = await walk('/ties/whole')
    expect(result.statuses).toEqual(Array(10).fill(200))
    expect(result.rows).toHaveLength(40)
    expect(new Set(result.rows).size).toBe(40)
  })

  it('a key unique together pages through every row', async () => {
    const result = await walk('/ties/pair')
    expect(result.statuses.every((status) => status === 200)).toBe(true)
    expect(result.rows.map((row) => Number(row.split(',')[1]))).toEqual(Array.from({ length: 40 }, (_, i) => i + 1))
  })

  it('a numeric key\'s tie is found though its texts differ (1.0 and 1.00)', async () => {
    const res = await request(`${gw.url}/decimals`)
    const problem = (await res.body.json()) as { code: string; detail: string }
    expect({ status: res.statusCode, code: problem.code }).toEqual({ status: 502, code: 'datasource_error' })
    expect(problem.detail).toContain('("k")')
  })

  it('a tie found after the head (the row past the page in a later batch) cuts the answer', async () => {
    const res = await request(`${gw.url}/late?format=csv`)
    expect(res.statusCode).toBe(200)
    await expect(res.body.text()).rejects.toThrow()
  })
})

describe('a float key holding Infinity or NaN', () => {
  it('[pg] pages through every row, each cursor taken back', async () => {
    const result = await walk('/floats')
    expect(result.statuses).toEqual(Array(6).fill(200))
    expect(result.rows).toEqual(['-Infinity', '1', '2', '3', 'Infinity', 'NaN'])
  })

  it('[pg] the JSON answer\'s next cursor after Infinity is taken back too (the probe: 1, 2 | 3, Infinity | NaN)', async () => {
    const first = (await (await request(`${gw.url}/floats/two`)).body.json()) as { next: string }
    const second = (await (await request(`${gw.url}/floats/two?cursor=${encodeURIComponent(first.next)}`)).body.json()) as { rows: unknown[]; next: string }
    expect(second.rows).toHaveLength(2) // 3, Infinity
    const third = await request(`${gw.url}/floats/two?cursor=${encodeURIComponent(second.next)}`)
    const page3 = (await third.body.json()) as { rows: unknown[]; next: string | null }
    expect(third.statusCode).toBe(200)
    expect(page3.rows).toHaveLength(1) // NaN
    expect(page3.next).toBeNull()
  })

  it('[lite] a REAL key holding -Inf and Inf pages through every row', async () => {
    const result = await walk('/lite/floats')
    expect(result.statuses.every((status) => status === 200)).toBe(true)
    expect(result.rows).toEqual(['-Infinity', '1', '2.5', 'Infinity'])
  })
})
