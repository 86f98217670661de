// Found by an adversarial probe: SQLite reads names case folded, so a dataset whose `key: ID` names
// its `id` column runs (ORDER BY "ID" works), but the gateway looked for the key's column by its
// exact name: every row's key read as missing, and the first page was refused, 502 "Two rows hold
// the same paging key": no page at all, and a message that sent the operator after duplicates.
import { join } from 'node:path'
import { DatabaseSync } from 'node:sqlite'
import { request } from 'undici'
import { afterAll, beforeAll, expect, it } from 'vitest'
import { startTestGateway, type TestGateway } from '../helpers/gateway.ts'

let gw: TestGateway

beforeAll(async () => {
  gw = await startTestGateway((dir) => {
    const db = new DatabaseSync(join(dir, 'people.db'))
    db.exec('CREATE TABLE people (Id INTEGER PRIMARY KEY, name TEXT)')
    const insert = db.prepare('INSERT INTO people VALUES (?, ?)')
    for (let id = 1; id <= 5; id++) insert.run(id, `p${id}`)
    db.close()
    return {
      datasources: [{ name: 'lite', type: 'sqlite', path: join(dir, 'people.db'), key: 'a-test-key-of-32-characters-long' }],
      routes: [{ id: 'people', methods: ['GET'], path: '/ds/people', public: true, dataset: { source: 'lite', sql: 'SELECT Id, name FROM people', page_size: 2, key: 'id' } }],
    }
  })
})

afterAll(async () => {
  await gw?.close()
})

it('a key named in another case than SQLite reports its column pages through every row', async () => {
  const names: string[] = []
  let cursor: string | null = null
  for (let page = 0; page < 5; page++) {
    const res = await request(`${gw.url}/ds/people${cursor === null ? '' : `?cursor=${cursor}`}`)
    const body = (await res.body.json()) as { rows: Array<{ name: string }>; next: string | null }
    expect(res.statusCode, JSON.stringify(body)).toBe(200)
    names.push(...body.rows.map((row) => row.name))
    cursor = body.next
    if (cursor === null) break
  }
  expect(names).toEqual(['p1', 'p2', 'p3', 'p4', 'p5'])
})
