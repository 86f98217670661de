// Found by an adversarial probe (helper): a dataset's format chosen by Accept read neither q=0 ("not
// acceptable", RFC 9110 §12.4.2) nor a weight written `Q=` (parameter names are case-insensitive):
// `Accept: text/csv;q=0` was answered in CSV.
import { request } from 'undici'
import { afterAll, beforeAll, expect, it } from 'vitest'
import { startTestGateway, type TestGateway } from '../helpers/gateway.ts'
import { SHARED_POSTGRES } from '../helpers/postgres.ts'

let gw: TestGateway

beforeAll(async () => {
  gw = await startTestGateway({
    datasources: [{ name: 'warehouse', type: 'postgres', url: SHARED_POSTGRES, max_connections: 2 }],
    routes: [{ id: 'ds.one', methods: ['GET'], path: '/ds/one', public: true, dataset: { source: 'warehouse', sql: 'SELECT 1 AS one' } }],
  })
})

afterAll(async () => {
  await gw?.close()
})

async function contentTypeFor(accept: string): Promise<string | undefined> {
  const res = await request(`${gw.url}/ds/one`, { headers: { accept } })
  await res.body.dump()
  expect(res.statusCode).toBe(200)
  return res.headers['content-type'] as string | undefined
}

it.each([
  ['text/csv;q=0', 'application/json'],
  ['text/csv;q=0, application/x-ndjson', 'application/x-ndjson'],
  ['text/csv;q=0, application/x-ndjson;q=0', 'application/json'],
  ['text/csv;Q=0.1, application/x-ndjson;q=0.5', 'application/x-ndjson'],
  ['application/x-ndjson;q=0.5, text/csv;Q=0.9', 'text/csv; charset=utf-8; header=present'],
  ['text/csv', 'text/csv; charset=utf-8; header=present'],
])('Accept: %s is answered as %s', async (accept, expected) => {
  expect(await contentTypeFor(accept)).toBe(expected)
})
