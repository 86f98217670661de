// Found by an adversarial probe: SQLite keeps any text in any column, and the docs say JSON sends
// such a value as the text it is. In an INTEGER column, text that JavaScript's Number() reads as an
// integer (`''` as 0, `0x10`, `0b11`) was written as it was, a bare token: `{"n":,` and
// `{"n":0x10` made the whole JSON (and NDJSON line) unreadable to every client.
import { join } from 'node:path'
import { DatabaseSync } from 'node:sqlite'
import { request } from 'undici'
import { afterAll, beforeAll, expect, it } from 'vitest'
import { startTestGateway, type TestGateway } from '../helpers/gateway.ts'

const TEXTS = ['', '0x10', '0b11', '0o7', 'Infinity']

let gw: TestGateway

beforeAll(async () => {
  gw = await startTestGateway((dir) => {
    const db = new DatabaseSync(join(dir, 'loose.db'))
    db.exec('CREATE TABLE counts (id INTEGER PRIMARY KEY, n INTEGER, r REAL)')
    const insert = db.prepare('INSERT INTO counts (n, r) VALUES (?, ?)')
    for (const text of TEXTS) insert.run(text, text)
    insert.run(42, 1.5)
    db.close()
    return {
      datasources: [{ name: 'lite', type: 'sqlite', path: join(dir, 'loose.db'), key: 'a-test-key-of-32-characters-long' }],
      // `CASE … END` declares no type: its kind is read from the first row (an integer), then text follows.
      routes: [{ id: 'counts', methods: ['GET'], path: '/ds/counts', public: true, dataset: { source: 'lite', sql: "SELECT n, r, CASE WHEN id = 1 THEN 7 ELSE '007' END AS e FROM counts ORDER BY id" } }],
    }
  })
})

afterAll(async () => {
  await gw?.close()
})

const EXPECTED = [
  ...TEXTS.map((text, i) => ({ n: text, r: text, e: i === 0 ? 7 : '007' })),
  { n: 42, r: 1.5, e: '007' },
]

it('JSON sends text held in a number column as a string, and stays JSON', async () => {
  const res = await request(`${gw.url}/ds/counts`)
  const text = await res.body.text()
  expect(res.statusCode, text).toBe(200)
  expect((JSON.parse(text) as { rows: unknown[] }).rows).toEqual(EXPECTED)
})

it('NDJSON: every line is JSON', async () => {
  const res = await request(`${gw.url}/ds/counts?format=ndjson`)
  const lines = (await res.body.text()).trimEnd().split('\n')
  expect(lines.map((line) => JSON.parse(line) as unknown)).toEqual(EXPECTED)
})
