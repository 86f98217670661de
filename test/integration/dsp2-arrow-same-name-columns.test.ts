// Found by an adversarial probe: a result with two columns of one name and different types (a join's
// `o.status` and `c.status`) answered Arrow with its schema and no rows at all, 200. apache-arrow's
// RecordBatch merges its schema's fields by name, so the batch's schema was not the stream's, and
// the writer ended the stream there. Arrow allows such names (pyarrow reads them); every row goes.
import { join } from 'node:path'
import { DatabaseSync } from 'node:sqlite'
import { MessageHeader, MessageReader, type Schema } from 'apache-arrow'
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
      routes: [{ id: 'orders', methods: ['GET'], path: '/ds/orders', public: true, dataset: { source: 'lite', sql: 'SELECT o.status, c.status FROM orders o JOIN customers c ON c.name = o.customer ORDER BY o.status' } }],
    }
  })
})

afterAll(async () => {
  await gw?.close()
})

/** The stream's messages: the schema's fields, then each record batch's row count. */
function messages(bytes: Buffer): Array<string[] | number> {
  const reader = new MessageReader(bytes)
  const out: Array<string[] | number> = []
  for (let message = reader.readMessage(); message !== null; message = reader.readMessage()) {
    if (message.headerType === MessageHeader.Schema) out.push((message.header() as Schema).fields.map((field) => `${field.name}:${String(field.type)}`))
    else out.push((message.header() as { length: number }).length)
    if (message.bodyLength > 0) reader.readMessageBody(message.bodyLength)
  }
  return out
}

it('Arrow sends every row of a result with two columns of one name, each with its own type', async () => {
  const res = await request(`${gw.url}/ds/orders?format=arrow`)
  expect(res.statusCode).toBe(200)
  expect(messages(Buffer.from(await res.body.arrayBuffer()))).toEqual([['status:Int64', 'status:Utf8'], 2])
})
