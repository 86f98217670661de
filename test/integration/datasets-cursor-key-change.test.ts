// A cursor holds the paging key's values where the last page stopped. A reload that paged the same
// dataset by another column of the same count took the old cursor's `id` as the new key's value:
// 200, from the wrong place (here: rows the first page had sent, sent again). The key's columns are
// now part of the cursor's scope: the old cursor is refused, and paging starts again.
import { mkdtempSync, rmSync } from 'node:fs'
import { DatabaseSync } from 'node:sqlite'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { request } from 'undici'
import { afterAll, beforeAll, expect, it } from 'vitest'
import { startTestGateway, type TestGateway } from '../helpers/gateway.ts'

let gw: TestGateway
let dir: string

const config = (key: string[]) => ({
  datasources: [{ name: 'shop', type: 'sqlite', path: join(dir, 'shop.db'), key: 'a-test-key-of-32-characters-long' }],
  routes: [{ id: 'items', methods: ['GET'], path: '/items', public: true, dataset: { source: 'shop', sql: 'SELECT id, rank FROM items', page_size: 3, key } }],
})

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'bouncer-cursor-key-'))
  const db = new DatabaseSync(join(dir, 'shop.db'))
  // rank runs the other way from id: id 1 has rank 10, id 10 rank 1.
  db.exec('CREATE TABLE items (id INTEGER PRIMARY KEY, rank INTEGER UNIQUE NOT NULL)')
  for (let id = 1; id <= 10; id++) db.prepare('INSERT INTO items VALUES (?, ?)').run(id, 11 - id)
  db.close()
  gw = await startTestGateway(config(['id']))
})

afterAll(async () => {
  await gw?.close()
  if (dir) rmSync(dir, { recursive: true, force: true })
})

async function page(cursor: string | null) {
  const res = await request(`${gw.url}/items${cursor === null ? '' : `?cursor=${encodeURIComponent(cursor)}`}`)
  return { status: res.statusCode, body: (await res.body.json()) as { rows?: Array<{ id: number; rank: number }>; next?: string | null; code?: string; detail?: string } }
}

it('a cursor issued before a reload that pages by other columns is 400 invalid_parameter naming the cursor; paging again from the start works', async () => {
  const first = await page(null)
  expect(first.status).toBe(200)
  expect(first.body.rows?.map((row) => row.id)).toEqual([1, 2, 3])
  const cursor = first.body.next as string

  await gw.writeConfig(config(['rank']))
  expect(await gw.reload()).toMatchObject({ ok: true })

  const carried = await page(cursor)
  expect(carried.status).toBe(400)
  expect(carried.body).toMatchObject({ code: 'invalid_parameter', detail: expect.stringContaining('Parameter "cursor": issued for other parameters, another dataset, another caller or before the dataset\'s paging key changed') })

  const again = await page(null)
  expect(again.status).toBe(200)
  expect(again.body.rows?.map((row) => row.rank)).toEqual([1, 2, 3])
  expect((await page(again.body.next as string)).body.rows?.map((row) => row.rank)).toEqual([4, 5, 6])
})
