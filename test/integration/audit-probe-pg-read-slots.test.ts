// Found by the audit probe: each admin API read of a PostgreSQL audit log (GET /api/audit, the
// console's figures and pages) took a connection of its own, as many as callers asked at once.
// While the reads were slow (a large log, a locked table), a read-only caller's 30 searches held 30
// of the server's connections — max_connections is 100 by default, shared with the gateway's sink,
// its datasets and every other instance. The gateway now has at most a few reads open at once; the
// others wait for one to end, and all are answered.
import pg from 'pg'
import { request } from 'undici'
import { afterAll, beforeAll, expect, it } from 'vitest'
import { startTestGateway, type TestGateway } from '../helpers/gateway.ts'
import { dropSchema, SHARED_POSTGRES, uniqueSchema } from '../helpers/postgres.ts'
import { waitFor } from '../helpers/wait.ts'

const READ_TOKEN = 'pg-read-slots-read-token-0123456789'
const schema = uniqueSchema('readslots')
let gw: TestGateway
let db: pg.Client
let locker: pg.Client

beforeAll(async () => {
  db = new pg.Client({ connectionString: SHARED_POSTGRES })
  locker = new pg.Client({ connectionString: SHARED_POSTGRES })
  await db.connect()
  await locker.connect()
  gw = await startTestGateway({
    admin: { token: `${READ_TOKEN}-admin`, read_token: READ_TOKEN },
    audit: { sinks: [{ type: 'postgres', url: SHARED_POSTGRES, schema, read_timeout: '20s' }] },
    routes: [],
  })
  // The sink's schema made to its last index, which the lock below would hold up.
  await waitFor(async () => (await db.query('SELECT to_regclass($1) AS t', [`${schema}.audit_console`])).rows[0].t !== null, 'the audit table')
}, 30_000)

afterAll(async () => {
  await locker?.query('ROLLBACK').catch(() => {})
  await locker?.end()
  await db?.end()
  await gw?.close()
  await dropSchema(SHARED_POSTGRES, schema)
}, 60_000)

/** Reads of the audit table waiting for its lock: each holds a connection of the server. */
const waiting = async () => (await db.query("SELECT count(*)::int AS n FROM pg_stat_activity WHERE query LIKE $1 AND wait_event_type = 'Lock' AND pid <> pg_backend_pid()", [`%FROM ${schema}.audit_records%`])).rows[0].n as number

it('holds a few of the server\'s connections for a read-only caller\'s many reads, and answers them all', async () => {
  await locker.query(`BEGIN; LOCK TABLE ${schema}.audit_records IN ACCESS EXCLUSIVE MODE`)
  const paths = Array.from({ length: 30 }, (_, i) => (i % 3 === 0 ? '/api/audit?limit=5' : i % 3 === 1 ? '/api/overview?since=1h' : '/api/audit/page'))
  const reads = paths.map((path) => request(`${gw.adminUrl}${path}`, { headers: { authorization: `Bearer ${READ_TOKEN}` } }).then(async (res) => {
    await res.body.dump()
    return res.statusCode
  }, (err: unknown) => String(err)))
  await waitFor(async () => (await waiting()) > 0, 'the reads to wait for the lock')
  // Given the time to open more, it does not.
  await new Promise((resolve) => setTimeout(resolve, 1_000))
  expect(await waiting()).toBeLessThanOrEqual(4)
  await locker.query('ROLLBACK')
  expect(await Promise.all(reads)).toEqual(paths.map(() => 200))
  await waitFor(async () => (await waiting()) === 0, 'no read left')
}, 60_000)
