// Found by an adversarial probe: a dataset paging by a BLOB key (a UUID kept as 16 bytes, as many
// applications keep one) in SQLite. The cursor kept the last key as its text (`\x…`), and SQLite
// sorts every BLOB after any text, so the page after the first was the first again, with a cursor
// to the same place: a BI tool following `next` never ended.
import { join } from 'node:path'
import { DatabaseSync } from 'node:sqlite'
import { request } from 'undici'
import { afterAll, beforeAll, expect, it } from 'vitest'
import { startTestGateway, type TestGateway } from '../helpers/gateway.ts'
import { SHARED_POSTGRES } from '../helpers/postgres.ts'

let gw: TestGateway

beforeAll(async () => {
  gw = await startTestGateway((dir) => {
    const db = new DatabaseSync(join(dir, 'devices.db'))
    db.exec('CREATE TABLE devices (id BLOB PRIMARY KEY, name TEXT)')
    const insert = db.prepare('INSERT INTO devices VALUES (?, ?)')
    for (let n = 1; n <= 5; n++) insert.run(Buffer.from([n, 0xff, 0x00]), `d${n}`)
    db.close()
    return {
      datasources: [
        { name: 'lite', type: 'sqlite', path: join(dir, 'devices.db'), key: 'a-test-key-of-32-characters-long' },
        { name: 'warehouse', type: 'postgres', url: SHARED_POSTGRES, max_connections: 2, key: 'a-test-key-of-32-characters-long' },
      ],
      routes: [
        { id: 'blob', methods: ['GET'], path: '/ds/blob', public: true, dataset: { source: 'lite', sql: 'SELECT id, name FROM devices', page_size: 2 } },
        { id: 'bytea', methods: ['GET'], path: '/ds/bytea', public: true, dataset: { source: 'warehouse', sql: "SELECT decode(lpad(to_hex(g), 2, '0') || 'ff00', 'hex') AS id, 'd' || g AS name FROM generate_series(1, 5) g", page_size: 2 } },
      ],
    }
  })
})

afterAll(async () => {
  await gw?.close()
})

/** Every page's names, following `next` until it is null (or 10 pages). */
async function allPages(path: string): Promise<string[]> {
  const names: string[] = []
  let cursor: string | null = null
  for (let page = 0; page < 10; page++) {
    const res = await request(`${gw.url}${path}${cursor === null ? '' : `?cursor=${cursor}`}`)
    const body = (await res.body.json()) as { rows: Array<{ name: string }>; next: string | null }
    expect(res.statusCode, JSON.stringify(body)).toBe(200)
    names.push(...body.rows.map((row) => row.name))
    cursor = body.next
    if (cursor === null) break
  }
  return names
}

it.each(['blob', 'bytea'])('paging by a bytes key (%s) reaches the end, each row once', async (id) => {
  expect(await allPages(`/ds/${id}`)).toEqual(['d1', 'd2', 'd3', 'd4', 'd5'])
})
