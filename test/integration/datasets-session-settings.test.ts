// A dataset's values must not depend on the settings of the role or database it reads as: a DBA's
// `ALTER ROLE reader SET DateStyle = 'SQL, DMY'` (or bytea_output, IntervalStyle,
// extra_float_digits) changes the text PostgreSQL sends, which the driver and the value writers read
// as ISO dates, hex bytes and shortest-exact floats.
import pg from 'pg'
import { request } from 'undici'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { startTestGateway, type TestGateway } from '../helpers/gateway.ts'
import { SHARED_POSTGRES } from '../helpers/postgres.ts'

const ROLE = 'bouncer_test_odd_settings'
const VALUES = `SELECT date '2026-01-31' AS day, timestamp '2026-01-31 12:34:56.5' AS local_at,
  timestamptz '2026-01-31 12:34:56.5+00' AS at, '\\x0102ff'::bytea AS b, interval '1 day 02:03:04' AS span,
  (1::float8 / 3) AS third, 0.1::float4 AS small`

let gw: TestGateway

beforeAll(async () => {
  const admin = new pg.Client({ connectionString: SHARED_POSTGRES })
  await admin.connect()
  try {
    // CREATE ROLE is cluster-wide: made once, its settings set again each run.
    await admin.query(`DO $$ BEGIN CREATE ROLE ${ROLE} LOGIN; EXCEPTION WHEN duplicate_object THEN NULL; END $$`)
    await admin.query(`ALTER ROLE ${ROLE} SET DateStyle = 'SQL, DMY'`)
    await admin.query(`ALTER ROLE ${ROLE} SET bytea_output = 'escape'`)
    await admin.query(`ALTER ROLE ${ROLE} SET IntervalStyle = 'sql_standard'`)
    await admin.query(`ALTER ROLE ${ROLE} SET extra_float_digits = -3`)
  } finally {
    await admin.end()
  }
  const odd = SHARED_POSTGRES.replace('postgres@', `${ROLE}@`)
  gw = await startTestGateway({
    datasources: [
      { name: 'plain', type: 'postgres', url: SHARED_POSTGRES, max_connections: 1, key: 'a-test-key-of-32-characters-long' },
      { name: 'odd', type: 'postgres', url: odd, max_connections: 1, key: 'a-test-key-of-32-characters-long' },
    ],
    routes: [
      { id: 'ds.plain', methods: ['GET'], path: '/ds/plain', public: true, dataset: { source: 'plain', sql: VALUES } },
      { id: 'ds.odd', methods: ['GET'], path: '/ds/odd', public: true, dataset: { source: 'odd', sql: VALUES } },
    ],
  })
})

afterAll(async () => {
  await gw?.close()
})

async function text(path: string): Promise<string> {
  const res = await request(`${gw.url}${path}`)
  const body = await res.body.text()
  expect(res.statusCode, body).toBe(200)
  return body
}

describe('a datasource whose role sets DateStyle, bytea_output, IntervalStyle and extra_float_digits', () => {
  it('sends the same values as one with the defaults, in JSON and CSV', async () => {
    const plain = JSON.parse(await text('/ds/plain')) as { rows: unknown[] }
    expect(plain.rows).toEqual([{ day: '2026-01-31', local_at: '2026-01-31T12:34:56.5', at: '2026-01-31T12:34:56.5Z', b: '0102ff', span: '1 day 02:03:04', third: 0.3333333333333333, small: 0.1 }])
    expect(JSON.parse(await text('/ds/odd'))).toEqual(plain)
    expect(await text('/ds/odd?format=csv')).toBe(await text('/ds/plain?format=csv'))
  })
})
