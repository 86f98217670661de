// Found by an adversarial probe: a paging key past 2^53 (a snowflake id, a hash) was sealed in the
// cursor as text. SQLite compares text as greater than every integer where the key column has no
// affinity (an expression such as `id + 0`), so the page after one that
// ended on such a key was empty, `next` null: the rest of the rows were lost without a word.
import { join } from 'node:path'
import { DatabaseSync } from 'node:sqlite'
import { request } from 'undici'
import { afterAll, beforeAll, expect, it } from 'vitest'
import { startTestGateway, type TestGateway } from '../helpers/gateway.ts'
import { SHARED_POSTGRES } from '../helpers/postgres.ts'

const FIRST = 4_611_686_018_427_387_904n // 2^62
const IDS = [0n, 1_000n, 2_000n, 3_000n, 4_000n].map((step) => String(FIRST + step))

let gw: TestGateway

beforeAll(async () => {
  gw = await startTestGateway((dir) => {
    const db = new DatabaseSync(join(dir, 'ids.db'))
    db.exec('CREATE TABLE events (id INTEGER PRIMARY KEY, name TEXT)')
    const insert = db.prepare('INSERT INTO events VALUES (?, ?)')
    for (const id of IDS) insert.run(BigInt(id), `e${id.slice(-4)}`)
    db.close()
    const route = (id: string, source: string, sql: string) => ({ id, methods: ['GET'], path: `/ds/${id}`, public: true, dataset: { source, sql, page_size: 2 } })
    return {
      datasources: [
        { name: 'lite', type: 'sqlite', path: join(dir, 'ids.db'), key: 'a-test-key-of-32-characters-long' },
        { name: 'warehouse', type: 'postgres', url: SHARED_POSTGRES, max_connections: 2, key: 'a-test-key-of-32-characters-long' },
      ],
      routes: [
        route('column', 'lite', 'SELECT id, name FROM events'),
        route('expression', 'lite', 'SELECT id + 0 AS id, name FROM events'),
        route('union', 'lite', "SELECT id, name FROM events UNION ALL SELECT 7, 'seven'"),
        route('int8', 'warehouse', `SELECT id, 'e' || right(id::text, 4) AS name FROM unnest(ARRAY[${IDS.join(',')}]::int8[]) AS id`),
      ],
    }
  })
})

afterAll(async () => {
  await gw?.close()
})

/** Every page's ids, following `next` until it is null (or 10 pages). */
async function allPages(path: string): Promise<unknown[]> {
  const ids: unknown[] = []
  let cursor: string | null = null
  for (let page = 0; page < 10; page++) {
    const res = await request(`${gw.url}${path}${cursor === null ? '' : `?cursor=${cursor}`}`)
    const body = (await res.body.json()) as { rows: Array<{ id: unknown }>; next: string | null }
    expect(res.statusCode, JSON.stringify(body)).toBe(200)
    ids.push(...body.rows.map((row) => row.id))
    cursor = body.next
    if (cursor === null) break
  }
  return ids
}

it.each(['column', 'expression'])('SQLite pages through keys past 2^53 (%s), no row lost', async (id) => {
  expect(await allPages(`/ds/${id}`)).toEqual(IDS)
})

it('SQLite pages through a UNION whose keys are small and past 2^53', async () => {
  expect(await allPages('/ds/union')).toEqual([7, ...IDS])
})

it('PostgreSQL pages through int8 keys past 2^53', async () => {
  expect(await allPages('/ds/int8')).toEqual(IDS)
})
