// Found by a probe (helper): what a dataset's parameters reach the database as. A timestamp lost its
// microseconds (an incremental load's `updated_at > :since` got its last row again); a string's
// `max` counted UTF-16 units; `%ff` was bound as U+FFFD; `format` and `cursor` given twice were
// taken (the first won) while a declared parameter given twice is 400.
import { mkdtempSync, rmSync } from 'node:fs'
import { DatabaseSync } from 'node:sqlite'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import pg from 'pg'
import { request } from 'undici'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { startTestGateway, type TestGateway } from '../helpers/gateway.ts'
import { SHARED_POSTGRES } from '../helpers/postgres.ts'

const EVENTS = `ds_events_${process.pid}_${Date.now() % 1_000_000}`
let gw: TestGateway
let db: pg.Client
let dir: string

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'bouncer-params-'))
  db = new pg.Client({ connectionString: SHARED_POSTGRES })
  await db.connect()
  await db.query(`CREATE TABLE ${EVENTS} (id int PRIMARY KEY, updated_at timestamptz NOT NULL)`)
  await db.query(`INSERT INTO ${EVENTS} VALUES (1, '2026-01-01T00:00:00.123456Z'), (2, '2026-01-01T00:00:00.123457Z'), (3, '2026-01-01T00:00:00.124Z')`)
  const lite = new DatabaseSync(join(dir, 'lite.db'))
  lite.exec('CREATE TABLE t (x INTEGER)')
  lite.close()
  gw = await startTestGateway({
    datasources: [
      { name: 'warehouse', type: 'postgres', url: SHARED_POSTGRES, max_connections: 2, key: 'a-test-key-of-32-characters-long' },
      { name: 'shop', type: 'sqlite', path: join(dir, 'lite.db'), key: 'a-test-key-of-32-characters-long' },
    ],
    routes: [
      {
        id: 'events', methods: ['GET'], path: '/events', public: true,
        dataset: { source: 'warehouse', sql: `SELECT id FROM ${EVENTS} WHERE updated_at > :since ORDER BY id`, params: { since: { type: 'timestamp', required: true } }, page_size: 10 },
      },
      { id: 'echo', methods: ['GET'], path: '/echo', public: true, dataset: { source: 'warehouse', sql: 'SELECT :s::text AS s, length(:s::text) AS n', params: { s: { type: 'string', max: 10 } } } },
      { id: 'lite.echo', methods: ['GET'], path: '/lite/echo', public: true, dataset: { source: 'shop', sql: 'SELECT :ts AS ts', params: { ts: { type: 'timestamp', required: true } } } },
    ],
  })
})

afterAll(async () => {
  await gw?.close()
  await db?.query(`DROP TABLE IF EXISTS ${EVENTS}`)
  await db?.end()
  if (dir) rmSync(dir, { recursive: true, force: true })
})

async function get(path: string): Promise<{ status: number; body: Record<string, unknown> }> {
  const res = await request(`${gw.url}${path}`)
  return { status: res.statusCode, body: (await res.body.json()) as Record<string, unknown> }
}

const ids = (body: Record<string, unknown>) => (body.rows as Array<{ id: number }>).map((row) => row.id)

describe('a timestamp parameter', () => {
  it('[pg] keeps its microseconds: `> :since` with the last row\'s own updated_at does not get that row again', async () => {
    expect(ids((await get(`/events?since=${encodeURIComponent('2026-01-01T00:00:00.123456Z')}`)).body)).toEqual([2, 3])
    expect(ids((await get(`/events?since=${encodeURIComponent('2026-01-01T01:00:00.123457+01:00')}`)).body)).toEqual([3])
  })

  it('digits past the microsecond that are not 0 are 400 invalid_parameter, not rounded', async () => {
    const res = await get(`/events?since=${encodeURIComponent('2026-01-01T00:00:00.1234561Z')}`)
    expect(res.status).toBe(400)
    expect(res.body).toMatchObject({ code: 'invalid_parameter', detail: expect.stringContaining('"since": a timestamp to the microsecond at most') })
  })

  it('[lite] is bound as RFC 3339 text in UTC: milliseconds as before, six digits when it has microseconds', async () => {
    expect((await get('/lite/echo?ts=2026-01-01T00:00:00Z')).body.rows).toEqual([{ ts: '2026-01-01T00:00:00.000Z' }])
    expect((await get(`/lite/echo?ts=${encodeURIComponent('2026-01-01T00:00:00.000001Z')}`)).body.rows).toEqual([{ ts: '2026-01-01T00:00:00.000001Z' }])
  })
})

describe('a string parameter', () => {
  it('max counts characters: six 𝄞 are within max 10', async () => {
    const res = await get(`/echo?s=${encodeURIComponent('𝄞'.repeat(6))}`)
    expect(res.status).toBe(200)
    expect(res.body.rows).toEqual([{ s: '𝄞'.repeat(6), n: 6 }])
  })

  it('bytes that are not UTF-8 are 400 naming the parameter, not bound as U+FFFD', async () => {
    const res = await get('/echo?s=%ff')
    expect(res.status).toBe(400)
    expect(res.body).toMatchObject({ code: 'invalid_parameter', detail: 'Parameter "s": not percent-encoded UTF-8.' })
  })
})

describe('the gateway\'s own parameters given twice', () => {
  it.each([
    ['format', '/echo?format=csv&format=json'],
    ['cursor', '/events?since=now&cursor=x&cursor=x'],
  ])('%s: 400 invalid_parameter, as a declared parameter given twice is', async (name, path) => {
    const res = await get(path)
    expect(res.status).toBe(400)
    expect(res.body).toMatchObject({ code: 'invalid_parameter', detail: `Parameter "${name}": one value expected, got several.` })
  })
})
