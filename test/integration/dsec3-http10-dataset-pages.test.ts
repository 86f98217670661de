// An HTTP/1.0 client's answer is not chunked: it ends where the connection closes, and it cannot
// carry trailers. A CSV, NDJSON or Arrow page longer than the first batch (1 MB of cells) said its
// next cursor in a trailer, so such a client got no cursor and could not page on; and a failure
// found after the head (a paging key tie past the first batch) cut the stream, which over HTTP/1.0
// read as a complete, shorter page. Such an answer is now read whole before its head: a
// Content-Length, the cursor in a header, and a failure is a clean 502.
import { join } from 'node:path'
import { DatabaseSync } from 'node:sqlite'
import { afterAll, beforeAll, expect, it } from 'vitest'
import { startTestGateway, type TestGateway } from '../helpers/gateway.ts'
import { rawRequest, type RawResponse } from '../helpers/raw.ts'

let gw: TestGateway

beforeAll(async () => {
  gw = await startTestGateway((dir) => {
    const db = new DatabaseSync(join(dir, 'n.db'))
    // 600 rows of 8,000 characters: 4.8 MB, past what an HTTP/1.0 answer holds (4 MiB).
    db.exec("CREATE TABLE n (id INTEGER PRIMARY KEY, k INTEGER NOT NULL, filler TEXT); WITH RECURSIVE g(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM g WHERE i < 600) INSERT INTO n SELECT i, CASE WHEN i = 201 THEN 200 ELSE i END, hex(zeroblob(4000)) FROM g")
    db.close()
    const dataset = (sql: string, extra: object) => ({ source: 'lite', sql, ...extra })
    return {
      datasources: [{ name: 'lite', type: 'sqlite', path: join(dir, 'n.db') }],
      routes: [
        { id: 'paged', methods: ['GET'], path: '/ds/paged', public: true, dataset: dataset('SELECT id, filler FROM n WHERE id <= 300 ORDER BY id', { page_size: 200 }) },
        { id: 'tied', methods: ['GET'], path: '/ds/tied', public: true, dataset: dataset('SELECT k, filler FROM n WHERE id <= 300 ORDER BY k', { page_size: 200, key: ['k'] }) },
        { id: 'big', methods: ['GET'], path: '/ds/big', public: true, dataset: dataset('SELECT id, filler FROM n ORDER BY id', { page_size: 5000, max_rows: 5000 }) },
        { id: 'unpaged', methods: ['GET'], path: '/ds/unpaged', public: true, dataset: dataset('SELECT id, filler FROM n ORDER BY id', { max_rows: 5000 }) },
      ],
    }
  })
})

afterAll(async () => {
  await gw?.close()
})

function get10(path: string): Promise<RawResponse> {
  return rawRequest(Number(new URL(gw.url).port), `GET ${path} HTTP/1.0\r\nHost: x\r\n\r\n`, { untilClosed: true, timeout: 15_000 })
}

function csvIds(body: string): number[] {
  const lines = body.split('\r\n').filter((line) => line !== '')
  expect(lines[0]).toBe('id,filler')
  return lines.slice(1).map((line) => Number(line.split(',')[0]))
}

function range(from: number, to: number): number[] {
  return Array.from({ length: to - from + 1 }, (_, i) => from + i)
}

it('a CSV page longer than the first batch comes whole, with a Content-Length and its cursor in a header', async () => {
  const first = await get10('/ds/paged?format=csv')
  expect(first.status).toBe(200)
  expect(first.headers['transfer-encoding']).toBeUndefined()
  expect(Number(first.headers['content-length'])).toBe(first.body.length)
  expect(first.headers['bouncer-truncated']).toBe('false')
  expect(csvIds(first.body)).toEqual(range(1, 200))
  const cursor = first.headers['bouncer-next-cursor']
  expect(cursor).toEqual(expect.any(String))

  const second = await get10(`/ds/paged?format=csv&cursor=${cursor}`)
  expect(second.status).toBe(200)
  expect(csvIds(second.body)).toEqual(range(201, 300))
  expect(second.headers['bouncer-next-cursor']).toBeUndefined()
})

it('NDJSON and Arrow pages say their cursor too', async () => {
  const ndjson = await get10('/ds/paged?format=ndjson')
  expect(ndjson.status).toBe(200)
  expect(ndjson.body.trim().split('\n')).toHaveLength(200)
  expect(ndjson.headers['bouncer-next-cursor']).toEqual(expect.any(String))
  const arrow = await get10('/ds/paged?format=arrow')
  expect(arrow.status).toBe(200)
  expect(Number(arrow.headers['content-length'])).toBe(Buffer.byteLength(arrow.body, 'latin1'))
  expect(arrow.headers['bouncer-next-cursor']).toEqual(expect.any(String))
})

it('a failure past the first batch is a 502, not a shorter page that reads as complete', async () => {
  // Rows 200 and 201 share k = 200 where the page ends: the next page would skip one.
  const res = await get10('/ds/tied?format=ndjson')
  expect(res.status).toBe(502)
  expect(JSON.parse(res.body)).toMatchObject({ type: expect.stringContaining('datasource_error') })
  // Over HTTP/1.1 the same stream is cut, which its chunked coding shows.
  const chunked = await rawRequest(Number(new URL(gw.url).port), 'GET /ds/tied?format=ndjson HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n', { untilClosed: true })
  expect(chunked.status).toBe(200)
  expect(chunked.raw.endsWith('0\r\n\r\n')).toBe(false)
})

it('a page past 4 MiB ends there, and its cursor goes on from there without losing a row', async () => {
  const ids: number[] = []
  let path = '/ds/big?format=csv'
  for (let pages = 0; ; pages++) {
    expect(pages).toBeLessThan(3)
    const res = await get10(path)
    expect(res.status).toBe(200)
    expect(Number(res.headers['content-length'])).toBe(res.body.length)
    expect(res.headers['bouncer-truncated']).toBe('false')
    ids.push(...csvIds(res.body))
    const next = res.headers['bouncer-next-cursor']
    if (next === undefined) break
    expect(res.body.length).toBeLessThan(5 * 1024 * 1024)
    path = `/ds/big?format=csv&cursor=${next}`
  }
  expect(ids).toEqual(range(1, 600))
})

it('an unpaged result past 4 MiB is cut there and says truncated', async () => {
  const res = await get10('/ds/unpaged?format=csv')
  expect(res.status).toBe(200)
  expect(res.headers['bouncer-truncated']).toBe('true')
  const ids = csvIds(res.body)
  expect(ids.length).toBeGreaterThan(500)
  expect(ids.length).toBeLessThan(600)
  expect(ids).toEqual(range(1, ids.length))
})
