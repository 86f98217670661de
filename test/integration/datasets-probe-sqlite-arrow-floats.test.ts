// Found by an adversarial probe: SQLite keeps any text in a REAL or NUMERIC column, and Arrow's
// Float64 column took Number() of it: an empty string came out 0 and `n/a` NaN, values the database
// does not hold (JSON and CSV send the text; Arrow's Int64 already sent null). Now such text is null.
import { join } from 'node:path'
import { DatabaseSync } from 'node:sqlite'
import { tableFromIPC } from 'apache-arrow'
import { request } from 'undici'
import { afterAll, beforeAll, expect, it } from 'vitest'
import { startTestGateway, type TestGateway } from '../helpers/gateway.ts'

let gw: TestGateway

beforeAll(async () => {
  gw = await startTestGateway((dir) => {
    const db = new DatabaseSync(join(dir, 'prices.db'))
    db.exec('CREATE TABLE prices (id INTEGER PRIMARY KEY, price REAL, total NUMERIC)')
    const insert = db.prepare('INSERT INTO prices (price, total) VALUES (?, ?)')
    for (const value of [1.5, 0, -0.0, '', ' ', 'n/a', null]) insert.run(value, value)
    db.close()
    return {
      datasources: [{ name: 'lite', type: 'sqlite', path: join(dir, 'prices.db'), key: 'a-test-key-of-32-characters-long' }],
      routes: [{ id: 'prices', methods: ['GET'], path: '/ds/prices', public: true, dataset: { source: 'lite', sql: 'SELECT price, total FROM prices ORDER BY id' } }],
    }
  })
})

afterAll(async () => {
  await gw?.close()
})

it('Arrow sends text held in a REAL or NUMERIC column as null, never as 0 or NaN', async () => {
  const res = await request(`${gw.url}/ds/prices?format=arrow`)
  const body = Buffer.from(await res.body.arrayBuffer())
  expect(res.statusCode, body.toString()).toBe(200)
  const table = tableFromIPC(body)
  const values = (name: string) => [...(table.getChild(name) ?? [])].map((value) => (Object.is(value, -0) ? 0 : value))
  expect(values('price')).toEqual([1.5, 0, 0, null, null, null, null])
  expect(values('total')).toEqual([1.5, 0, 0, null, null, null, null])
})
