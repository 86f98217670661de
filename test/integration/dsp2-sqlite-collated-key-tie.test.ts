// Found by an adversarial probe: a page that ends on a tie of its key is refused (the next page,
// `(key) > (last)`, would skip the row past it), but the tie was judged by the key's text in
// JavaScript. SQLite compares a `COLLATE NOCASE` (or RTRIM) column as the collation says: `Bob`
// and `bob` are one key there, so the next page started after both and `bob` was left out, 200
// every time. The same names in a BINARY column are two keys and page through.
import { join } from 'node:path'
import { DatabaseSync } from 'node:sqlite'
import { request } from 'undici'
import { afterAll, beforeAll, expect, it } from 'vitest'
import { startTestGateway, type TestGateway } from '../helpers/gateway.ts'

let gw: TestGateway

beforeAll(async () => {
  gw = await startTestGateway((dir) => {
    const db = new DatabaseSync(join(dir, 'people.db'))
    db.exec('CREATE TABLE folded (name TEXT COLLATE NOCASE); CREATE TABLE trimmed (name TEXT COLLATE RTRIM); CREATE TABLE exact (name TEXT)')
    for (const [table, names] of [['folded', ['alice', 'Bob', 'bob', 'carol']], ['trimmed', ['alice', 'bob', 'bob  ', 'carol']], ['exact', ['alice', 'bob', 'Bob', 'carol']]] as const) {
      const insert = db.prepare(`INSERT INTO ${table} VALUES (?)`)
      for (const name of names) insert.run(name)
    }
    db.close()
    const route = (table: string) => ({ id: table, methods: ['GET'], path: `/ds/${table}`, public: true, dataset: { source: 'lite', sql: `SELECT name FROM ${table}`, page_size: 2 } })
    return {
      datasources: [{ name: 'lite', type: 'sqlite', path: join(dir, 'people.db'), key: 'a-test-key-of-32-characters-long' }],
      routes: ['folded', 'trimmed', 'exact'].map(route),
    }
  })
})

afterAll(async () => {
  await gw?.close()
})

async function pageThrough(table: string): Promise<{ status: number; names: string[]; detail?: string }> {
  const names: string[] = []
  let cursor: string | null = null
  for (let page = 0; page < 5; page++) {
    const res = await request(`${gw.url}/ds/${table}${cursor === null ? '' : `?cursor=${cursor}`}`)
    const body = (await res.body.json()) as { rows?: Array<{ name: string }>; next?: string | null; detail?: string }
    if (res.statusCode !== 200) return { status: res.statusCode, names, detail: body.detail }
    names.push(...(body.rows ?? []).map((row) => row.name))
    cursor = body.next ?? null
    if (cursor === null) break
  }
  return { status: 200, names }
}

it.each(['folded', 'trimmed'])('a page ending on keys that are one under the column\'s collation (%s) is refused, not paged past', async (table) => {
  const { status, names, detail } = await pageThrough(table)
  expect({ status, names }).toEqual({ status: 502, names: [] })
  expect(detail).toMatch(/same paging key \("name"\)/)
})

it('the same names in a BINARY column are different keys: every row, in order', async () => {
  expect(await pageThrough('exact')).toEqual({ status: 200, names: ['Bob', 'alice', 'bob', 'carol'] })
})
