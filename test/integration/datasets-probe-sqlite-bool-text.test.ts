// Found by an adversarial probe: an application that writes 'true' into an SQLite BOOLEAN column
// stores text (the column's NUMERIC affinity keeps it). Every format read anything but PostgreSQL's
// `t` as false: 'true' and 'yes' came out false in JSON, CSV and Arrow, though the docs say SQLite's
// text in any column goes as the text it is. Now JSON and CSV send it as text, Arrow as null.
import { join } from 'node:path'
import { DatabaseSync } from 'node:sqlite'
import { tableFromIPC } from 'apache-arrow'
import { request } from 'undici'
import { afterAll, beforeAll, expect, it } from 'vitest'
import { startTestGateway, type TestGateway } from '../helpers/gateway.ts'

let gw: TestGateway

beforeAll(async () => {
  gw = await startTestGateway((dir) => {
    const db = new DatabaseSync(join(dir, 'flags.db'))
    db.exec('CREATE TABLE flags (id INTEGER PRIMARY KEY, on_call BOOLEAN)')
    const insert = db.prepare('INSERT INTO flags (on_call) VALUES (?)')
    for (const value of [1, 0, 'true', 'yes', '', null]) insert.run(value)
    db.close()
    return {
      datasources: [{ name: 'lite', type: 'sqlite', path: join(dir, 'flags.db'), key: 'a-test-key-of-32-characters-long' }],
      routes: [{ id: 'flags', methods: ['GET'], path: '/ds/flags', public: true, dataset: { source: 'lite', sql: 'SELECT id, on_call FROM flags ORDER BY id' } }],
    }
  })
})

afterAll(async () => {
  await gw?.close()
})

async function get(format: string): Promise<Buffer> {
  const res = await request(`${gw.url}/ds/flags?format=${format}`)
  const body = Buffer.from(await res.body.arrayBuffer())
  expect(res.statusCode, body.toString()).toBe(200)
  return body
}

it('JSON: booleans as booleans, text as the text it is', async () => {
  const { rows } = JSON.parse((await get('json')).toString()) as { rows: Array<{ on_call: unknown }> }
  expect(rows.map((row) => row.on_call)).toEqual([true, false, 'true', 'yes', '', null])
})

it('CSV: the same', async () => {
  expect((await get('csv')).toString()).toBe('id,on_call\r\n1,true\r\n2,false\r\n3,true\r\n4,yes\r\n5,""\r\n6,\r\n')
})

it('Arrow: text is no Bool, so null, never false', async () => {
  const table = tableFromIPC(await get('arrow'))
  expect(table.getChild('on_call')?.toArray()).toEqual([true, false, null, null, null, null])
})
