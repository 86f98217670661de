// Found by an adversarial probe: SQLite types an expression's column (coalesce, CASE, arithmetic)
// by its first value. `coalesce(discount, 0)` over a first row without a discount is the integer 0,
// so the column was an integer one: the floats after it went as strings ("0.5") in JSON and as null
// in Arrow's Int64, a discount lost for pandas and DuckDB.
import { join } from 'node:path'
import { DatabaseSync } from 'node:sqlite'
import { tableFromIPC } from 'apache-arrow'
import { request } from 'undici'
import { afterAll, beforeAll, expect, it } from 'vitest'
import { startTestGateway, type TestGateway } from '../helpers/gateway.ts'

let gw: TestGateway

beforeAll(async () => {
  gw = await startTestGateway((dir) => {
    const db = new DatabaseSync(join(dir, 'orders.db'))
    db.exec('CREATE TABLE orders (id INTEGER PRIMARY KEY, discount REAL)')
    db.exec(`WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 6000) INSERT INTO orders SELECT i, CASE WHEN i IN (2, 5500) THEN 0.5 WHEN i = 3 THEN 0.25 END FROM n`)
    db.close()
    return {
      datasources: [{ name: 'lite', type: 'sqlite', path: join(dir, 'orders.db'), key: 'a-test-key-of-32-characters-long' }],
      routes: [{ id: 'orders', methods: ['GET'], path: '/ds/orders', public: true, dataset: { source: 'lite', sql: 'SELECT id, coalesce(discount, 0) AS discount, CASE WHEN id = 5500 THEN 0.5 ELSE 0 END AS late FROM orders ORDER BY id' } }],
    }
  })
})

afterAll(async () => {
  await gw?.close()
})

it('JSON sends every discount as a number, in the first batch and after it', async () => {
  const res = await request(`${gw.url}/ds/orders`)
  const { rows } = (await res.body.json()) as { rows: Array<{ id: number; discount: unknown }> }
  expect(rows).toHaveLength(6000)
  expect(rows.slice(0, 4).map((row) => row.discount)).toEqual([0, 0.5, 0.25, 0])
  // `late`'s first float comes after the first batch, whose integers typed it: still a number.
  expect(rows[5499]).toEqual({ id: 5500, discount: 0.5, late: 0.5 })
})

it('Arrow types the column by its first batch, floats and all: Float64', async () => {
  const res = await request(`${gw.url}/ds/orders?format=arrow`)
  const table = tableFromIPC(Buffer.from(await res.body.arrayBuffer()))
  expect(String(table.schema.fields.find((field) => field.name === 'discount')?.type)).toBe('Float64')
  expect([...(table.getChild('discount') ?? [])].slice(0, 4)).toEqual([0, 0.5, 0.25, 0])
})
