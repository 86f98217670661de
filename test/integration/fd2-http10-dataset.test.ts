// Found by an adversarial probe: a dataset page that runs past its first batch (1 MB of cells)
// says its paging facts in trailers, which only a chunked answer with a body carries. An HTTP/1.0
// client (no chunked coding), and a HEAD over any version, got 502 datasource_error "failed
// mid-query": Node refuses a Trailer field on such an answer, and the database had done nothing wrong.
import { join } from 'node:path'
import { DatabaseSync } from 'node:sqlite'
import { afterAll, beforeAll, expect, it } from 'vitest'
import { startTestGateway, type TestGateway } from '../helpers/gateway.ts'
import { rawRequest } from '../helpers/raw.ts'

let gw: TestGateway

beforeAll(async () => {
  gw = await startTestGateway((dir) => {
    const db = new DatabaseSync(join(dir, 'n.db'))
    db.exec("CREATE TABLE n (id INTEGER PRIMARY KEY, filler TEXT); WITH RECURSIVE g(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM g WHERE i < 300) INSERT INTO n SELECT i, hex(zeroblob(4000)) FROM g")
    db.close()
    return {
      datasources: [{ name: 'lite', type: 'sqlite', path: join(dir, 'n.db') }],
      routes: [{ id: 'n', methods: ['GET'], path: '/ds/n', public: true, dataset: { source: 'lite', sql: 'SELECT id, filler FROM n ORDER BY id', page_size: 200 } }],
    }
  })
})

afterAll(async () => {
  await gw?.close()
})

it('an HTTP/1.0 client gets every row of a page longer than the first batch, and its next cursor', async () => {
  const res = await rawRequest(Number(new URL(gw.url).port), 'GET /ds/n HTTP/1.0\r\nHost: x\r\n\r\n')
  expect(res.status).toBe(200)
  expect(res.headers['transfer-encoding']).toBeUndefined()
  expect(res.headers.trailer).toBeUndefined()
  const body = JSON.parse(res.body) as { rows: Array<{ id: number; filler: string }>; next: string | null }
  expect(body.rows.map((row) => row.id)).toEqual(Array.from({ length: 200 }, (_, i) => i + 1))
  expect(body.rows[199]?.filler).toHaveLength(8000)
  expect(body.next).toEqual(expect.any(String))
})

it('HEAD of a page longer than the first batch answers 200 with GET\'s head, over HTTP/1.1 and 1.0', async () => {
  for (const version of ['1.1', '1.0']) {
    const res = await rawRequest(Number(new URL(gw.url).port), `HEAD /ds/n HTTP/${version}\r\nHost: x\r\nConnection: close\r\n\r\n`)
    expect({ version, status: res.status }).toEqual({ version, status: 200 })
    expect(res.headers['content-type']).toBe('application/json')
  }
})
