// Found by an adversarial probe: a PostgreSQL paging key whose values the database holds as one
// though their texts differ: an interval ('1 day' = '24:00:00'), a text under a nondeterministic
// ICU collation ('Bob' = 'bob'). A page that ended between two such rows was not refused as a tie,
// and the next page (`key > '1 day'`) skipped the second: rows lost without a word, 200 each time.
import pg from 'pg'
import { request } from 'undici'
import { afterAll, beforeAll, expect, it } from 'vitest'
import { startTestGateway, type TestGateway } from '../helpers/gateway.ts'
import { SHARED_POSTGRES } from '../helpers/postgres.ts'

const COLLATION = `fd2_ci_${process.pid}_${Date.now() % 1_000_000}`
let gw: TestGateway
let db: pg.Client

beforeAll(async () => {
  db = new pg.Client({ connectionString: SHARED_POSTGRES })
  await db.connect()
  // Case-insensitive: 'Bob' = 'bob'.
  await db.query(`CREATE COLLATION ${COLLATION} (provider = icu, locale = 'und-u-ks-level2', deterministic = false)`)
  gw = await startTestGateway({
    datasources: [{ name: 'warehouse', type: 'postgres', url: SHARED_POSTGRES, max_connections: 2, key: 'a-test-key-of-32-characters-long' }],
    routes: [
      { id: 'intervals', methods: ['GET'], path: '/intervals', public: true, dataset: { source: 'warehouse', sql: "SELECT k, v FROM (VALUES (interval '1 day', 1), (interval '24 hours', 2), (interval '2 days', 3)) AS t(k, v)", page_size: 1 } },
      { id: 'binary', methods: ['GET'], path: '/binary', public: true, dataset: { source: 'warehouse', sql: `SELECT k COLLATE "C" AS k, v FROM (VALUES ('Bob', 1), ('bob', 2), ('carl', 3)) AS t(k, v)`, page_size: 1 } },
      { id: 'names', methods: ['GET'], path: '/names', public: true, dataset: { source: 'warehouse', sql: `SELECT k COLLATE ${COLLATION} AS k, v FROM (VALUES ('Bob', 1), ('bob', 2), ('carl', 3)) AS t(k, v)`, page_size: 1 } },
    ],
  })
})

afterAll(async () => {
  await gw?.close()
  await db?.query(`DROP COLLATION IF EXISTS ${COLLATION}`)
  await db?.end()
})

/** Every page's rows, or the status and problem that stopped the paging. */
async function pageThrough(path: string): Promise<{ values: number[]; status: number; detail?: string }> {
  const values: number[] = []
  let cursor: string | null = null
  for (let page = 0; page < 10; page++) {
    const res = await request(`${gw.url}${path}${cursor === null ? '' : `?cursor=${cursor}`}`)
    if (res.statusCode !== 200) return { values, status: res.statusCode, detail: ((await res.body.json()) as { detail: string }).detail }
    const body = (await res.body.json()) as { rows: Array<{ v: number }>; next: string | null }
    values.push(...body.rows.map((row) => row.v))
    if (body.next === null) break
    cursor = body.next
  }
  return { values, status: 200 }
}

it.each(['/intervals', '/names'])('%s: a page ending between two keys the database holds as one is refused as a tie, not left short', async (path) => {
  expect(await pageThrough(path)).toEqual({ values: [], status: 502, detail: expect.stringContaining('Two rows hold the same paging key ("k")') })
})

it('keys that only look alike (Bob and bob in the C collation) are two: every row, page by page', async () => {
  expect(await pageThrough('/binary')).toEqual({ values: [1, 2, 3], status: 200 })
})
