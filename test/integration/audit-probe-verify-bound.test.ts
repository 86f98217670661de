// Found by the audit probe: the console's Verify (POST /api/audit/verify) of a PostgreSQL log read it
// on a connection with no time bound, where the searches' end at the sink's read_timeout
// (postgres-parties-leaving.test.ts). With the table locked (a migration, a VACUUM FULL, a stuck
// transaction), each Verify waited in PostgreSQL for good, its caller long gone, holding one of the
// server's connections, which the gateway's audit sink and datasets share.
import pg from 'pg'
import { request } from 'undici'
import { afterAll, beforeAll, expect, it } from 'vitest'
import { startTestGateway, type TestGateway } from '../helpers/gateway.ts'
import { dropSchema, SHARED_POSTGRES, uniqueSchema } from '../helpers/postgres.ts'
import { waitFor } from '../helpers/wait.ts'

const TOKEN = 'verify-bound-admin-token-0123456789'
const schema = uniqueSchema('verifybound')
let gw: TestGateway
let db: pg.Client
let locker: pg.Client

beforeAll(async () => {
  db = new pg.Client({ connectionString: SHARED_POSTGRES })
  locker = new pg.Client({ connectionString: SHARED_POSTGRES })
  await db.connect()
  await locker.connect()
  gw = await startTestGateway({ admin: { token: TOKEN }, audit: { sinks: [{ type: 'postgres', url: SHARED_POSTGRES, schema, read_timeout: '2s' }] }, routes: [] })
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

/** Reads of the audit table waiting for its lock. */
const waiting = async () => (await db.query("SELECT count(*)::int AS n FROM pg_stat_activity WHERE query LIKE $1 AND wait_event_type = 'Lock' AND pid <> pg_backend_pid()", [`%FROM ${schema}.audit_records%`])).rows[0].n as number

const verify = (signal?: AbortSignal) => request(`${gw.adminUrl}/api/audit/verify`, { method: 'POST', headers: { authorization: `Bearer ${TOKEN}` }, signal })

it('ends a Verify whose table is locked at the sink\'s read_timeout, in PostgreSQL too', async () => {
  await locker.query(`BEGIN; LOCK TABLE ${schema}.audit_records IN ACCESS EXCLUSIVE MODE`)
  const asked = Date.now()
  // A caller who gives up, and one who waits for the answer.
  await verify(AbortSignal.timeout(500)).catch(() => {})
  const answered = verify(AbortSignal.timeout(10_000)) // answered, at read_timeout
  await waitFor(async () => (await waiting()) > 0, 'the verify to wait for the lock')
  const res = await answered
  expect(res.statusCode).toBeGreaterThanOrEqual(500)
  await res.body.dump()
  await waitFor(async () => (await waiting()) === 0, 'the abandoned verify to end', 15_000)
  // Ended by read_timeout (2 s), not by the client's own bound 5 s later.
  expect(Date.now() - asked).toBeLessThan(6_000)
  await locker.query('ROLLBACK')
  // The lock gone, Verify answers.
  const after = await verify()
  expect(after.statusCode).toBe(200)
  expect(await after.body.json()).toMatchObject({ ok: true })
}, 60_000)
