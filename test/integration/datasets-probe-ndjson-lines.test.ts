// Found by an adversarial probe: PostgreSQL's json type (not jsonb) keeps its input's whitespace,
// line breaks included, and the JSON writers sent that text as it was: in NDJSON a row whose json
// value held a line break spanned two lines, so a reader taking a line at a time (jq -c, pandas'
// read_json(lines=True), BigQuery's loader) failed on the row, or read half of it.
import { request } from 'undici'
import { afterAll, beforeAll, expect, it } from 'vitest'
import { startTestGateway, type TestGateway } from '../helpers/gateway.ts'
import { SHARED_POSTGRES } from '../helpers/postgres.ts'

let gw: TestGateway

const SQL = `SELECT 1 AS id, E'{"a":\\n 1,\\r\\n "b": "x\\\\ny"}'::json AS doc, E'line\\u2028sep' AS note
  UNION ALL SELECT 2, E'[1,\\n2]'::json, 'plain' ORDER BY id`

beforeAll(async () => {
  gw = await startTestGateway({
    datasources: [{ name: 'warehouse', type: 'postgres', url: SHARED_POSTGRES, max_connections: 2, key: 'a-test-key-of-32-characters-long' }],
    routes: [{ id: 'ds.docs', methods: ['GET'], path: '/ds/docs', public: true, dataset: { source: 'warehouse', sql: SQL } }],
  })
})

afterAll(async () => {
  await gw?.close()
})

it('NDJSON sends one row a line though a json value holds line breaks, and the values are kept', async () => {
  const res = await request(`${gw.url}/ds/docs?format=ndjson`)
  const text = await res.body.text()
  expect(res.statusCode, text).toBe(200)
  const lines = text.split('\n')
  expect(lines.pop()).toBe('')
  expect(lines).toHaveLength(2)
  expect(lines.map((line) => JSON.parse(line) as unknown)).toEqual([
    { id: 1, doc: { a: 1, b: 'x\ny' }, note: 'line\u2028sep' },
    { id: 2, doc: [1, 2], note: 'plain' },
  ])
})

it('JSON keeps the same values', async () => {
  const res = await request(`${gw.url}/ds/docs`)
  const body = (await res.body.json()) as { rows: unknown[] }
  expect(body.rows).toEqual([
    { id: 1, doc: { a: 1, b: 'x\ny' }, note: 'line\u2028sep' },
    { id: 2, doc: [1, 2], note: 'plain' },
  ])
})
