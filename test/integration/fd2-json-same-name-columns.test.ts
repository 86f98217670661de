// Found by an adversarial probe: a result with two columns of one name (a join's `o.status` and
// `c.status`) was answered in JSON and NDJSON with each row an object holding that key twice,
// `{"status":1,"status":"gold"}`: every JSON reader keeps one of the two (JavaScript's, Python's
// and jq the last), so the other column's values were lost without a word. The later one is
// `status_2` there, and in `_schema`, which had merged the two (and left out a `__proto__` column).
import { join } from 'node:path'
import { DatabaseSync } from 'node:sqlite'
import { request } from 'undici'
import { afterAll, beforeAll, expect, it } from 'vitest'
import { startTestGateway, type TestGateway } from '../helpers/gateway.ts'

let gw: TestGateway

beforeAll(async () => {
  gw = await startTestGateway((dir) => {
    const db = new DatabaseSync(join(dir, 'shop.db'))
    db.exec("CREATE TABLE orders (status INTEGER, customer TEXT); CREATE TABLE customers (name TEXT, status TEXT); INSERT INTO orders VALUES (1, 'ann'), (2, 'bo'); INSERT INTO customers VALUES ('ann', 'gold'), ('bo', 'new')")
    db.close()
    return {
      datasources: [{ name: 'lite', type: 'sqlite', path: join(dir, 'shop.db') }],
      routes: [
        // A third `status`, and a column already named status_2: the third is status_3.
        { id: 'orders', methods: ['GET'], path: '/ds/orders', public: true, dataset: { source: 'lite', sql: "SELECT o.status, c.status, 'x' AS status_2, o.customer AS status, 7 AS \"__proto__\" FROM orders o JOIN customers c ON c.name = o.customer ORDER BY o.status" } },
      ],
    }
  })
})

afterAll(async () => {
  await gw?.close()
})


it('JSON keeps every column of a result with repeated names, a later one as NAME_2 (the first free)', async () => {
  const res = await request(`${gw.url}/ds/orders?format=json`)
  expect(res.statusCode).toBe(200)
  const text = await res.body.text()
  expect(text).toContain('{"status":1,"status_3":"gold","status_2":"x","status_4":"ann","__proto__":7}')
  expect((JSON.parse(text) as { rows: unknown[] }).rows).toHaveLength(2)
})

it('NDJSON too', async () => {
  const res = await request(`${gw.url}/ds/orders?format=ndjson`)
  expect(res.statusCode).toBe(200)
  expect((await res.body.text()).split('\n')[1]).toBe('{"status":2,"status_3":"new","status_2":"x","status_4":"bo","__proto__":7}')
})

it('_schema describes the rows as JSON sends them: every key, its own type', async () => {
  const res = await request(`${gw.url}/ds/orders/_schema`)
  expect(res.statusCode).toBe(200)
  const schema = (await res.body.json()) as { properties: Record<string, { 'x-bouncer-kind': string }>; required: string[] }
  expect(Object.keys(schema.properties)).toEqual(['status', 'status_3', 'status_2', 'status_4', '__proto__'])
  expect(schema.required).toEqual(['status', 'status_3', 'status_2', 'status_4', '__proto__'])
  expect(schema.properties.status?.['x-bouncer-kind']).toBe('bigint')
  expect(schema.properties.status_3?.['x-bouncer-kind']).toBe('string')
})

it('CSV keeps the names as the database gives them', async () => {
  const res = await request(`${gw.url}/ds/orders?format=csv`)
  expect(res.statusCode).toBe(200)
  expect((await res.body.text()).split('\r\n')[0]).toBe('status,status,status_2,status,__proto__')
})
