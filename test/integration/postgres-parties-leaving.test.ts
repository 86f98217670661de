// PostgreSQL behind the gateway when a party leaves or stalls in the middle (found by an adversarial
// probe): a dataset client that hangs up while its query is being opened, PostgreSQL ending a
// dataset's connection while its client is slow to read, and admin reads of a PostgreSQL audit log
// whose callers gave up while the table was locked. Real PostgreSQL, observed in pg_stat_activity.
import { get as httpGet, type IncomingMessage } from 'node:http'
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import pg from 'pg'
import { request } from 'undici'
import { stringify } from 'yaml'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { startServe } from '../helpers/cli.ts'
import { startTestGateway, withDefaults, type TestGateway } from '../helpers/gateway.ts'
import { dropSchema, SHARED_POSTGRES, uniqueSchema } from '../helpers/postgres.ts'
import { waitFor } from '../helpers/wait.ts'

let db: pg.Client

beforeAll(async () => {
  db = new pg.Client({ connectionString: SHARED_POSTGRES })
  await db.connect()
})

afterAll(async () => {
  await db?.end()
})

/** This datasource's sessions in a state (application_name is `bouncer:<name>`). */
async function sessions(source: string, state: string): Promise<number> {
  const result = await db.query('SELECT count(*)::int AS n FROM pg_stat_activity WHERE application_name = $1 AND state = $2', [`bouncer:${source}`, state])
  return (result.rows[0] as { n: number }).n
}

describe('a dataset client that hangs up while its query is being opened', () => {
  // It waited for the only connection; its 'close' came before the dataset listened for one, so the
  // connection it then got was kept in its transaction for good: every later request answered 503
  // upstream_saturated, and closing the datasource (a reload, a shutdown) never finished.
  const source = `leaving_${process.pid}`
  let gw: TestGateway

  beforeAll(async () => {
    gw = await startTestGateway({
      datasources: [{ name: source, type: 'postgres', url: SHARED_POSTGRES, max_connections: 1, connect_timeout: '3s' }],
      routes: [{ id: 'sleep', methods: ['GET'], path: '/sleep', public: true, dataset: { source, sql: 'SELECT pg_sleep(:s)::text AS slept', params: { s: { type: 'number', default: 0 } } } }],
    })
  }, 30_000)

  afterAll(async () => {
    await db.query('SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = $1', [`bouncer:${source}`])
    await gw?.close()
  })

  it('leaves the connection free: the next request is answered, nothing stays in a transaction', async () => {
    const holding = request(`${gw.url}/sleep?s=1`)
    await waitFor(async () => (await sessions(source, 'active')) === 1, 'the only connection to be busy')
    const leaving = httpGet(`${gw.url}/sleep`)
    leaving.on('error', () => {})
    await waitFor(() => gw.state.inFlight === 2, 'the second request to wait for the connection')
    leaving.destroy()
    const held = await holding
    expect(held.statusCode).toBe(200)
    await held.body.text()
    await waitFor(() => gw.state.inFlight === 0, 'both requests to end')

    const next = await request(`${gw.url}/sleep`)
    expect(next.statusCode, await next.body.text()).toBe(200)
    expect(await sessions(source, 'idle in transaction')).toBe(0)
  }, 30_000)
})

describe('PostgreSQL ending a dataset connection while its client does not read', () => {
  // The cursor waits between batches for the client to take the rows; pg-pool takes its error
  // listener off a connection it lends, so the connection's failure then was thrown as uncaught and
  // the whole gateway drained and exited 1.
  const source = `stalled_${process.pid}`
  let dir: string

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'bouncer-pg-stalled-'))
  })

  afterAll(async () => {
    await rm(dir, { recursive: true, force: true })
  })

  it('keeps the gateway serving: the stalled response is cut, the next one answered', async () => {
    const file = join(dir, 'bouncer.yaml')
    await writeFile(file, stringify(withDefaults({
      datasources: [{ name: source, type: 'postgres', url: SHARED_POSTGRES, max_connections: 2 }],
      routes: [
        { id: 'big', methods: ['GET'], path: '/big', public: true, dataset: { source, sql: "SELECT g AS id, repeat('x', 200) AS filler FROM generate_series(1, 300000) g", timeout: '2m' } },
        { id: 'one', methods: ['GET'], path: '/one', public: true, dataset: { source, sql: 'SELECT 1 AS one' } },
      ],
    }, dir)))
    const gw = await startServe(['--config', file])
    try {
      const res = await new Promise<IncomingMessage>((resolve, reject) => httpGet(`${gw.url}/big?format=csv`, resolve).on('error', reject))
      res.on('error', () => {})
      res.pause() // the client stops reading: the cursor waits, its connection idle in the server
      // Between batches the portal stays open, its session waiting for the gateway's next fetch
      // (active, ClientRead); seen on ten polls in a row, the gateway is waiting for the client.
      let pid = 0
      let seen = 0
      await waitFor(async () => {
        const row = (await db.query("SELECT pid FROM pg_stat_activity WHERE application_name = $1 AND state = 'active' AND wait_event = 'ClientRead'", [`bouncer:${source}`])).rows[0] as { pid: number } | undefined
        seen = row !== undefined && row.pid === pid ? seen + 1 : 0
        pid = row?.pid ?? 0
        return seen >= 10
      }, 'the cursor to wait for the client', 30_000)
      await db.query('SELECT pg_terminate_backend($1)', [pid])
      res.resume() // the gateway reads its next batch, and finds the connection gone
      await new Promise<void>((resolve) => {
        res.once('close', resolve)
        res.once('end', resolve)
      })
      const next = await request(`${gw.url}/one`)
      expect(next.statusCode, await next.body.text()).toBe(200)
      expect(gw.child.exitCode).toBeNull()
      expect(gw.stderr()).not.toContain('uncaught_exception')
    } finally {
      await gw.stop()
    }
  }, 60_000)
})

describe('admin reads of a PostgreSQL audit log whose callers gave up', () => {
  // /api/audit, /api/overview and /api/audit/page each took a connection with no time bound: with
  // the table locked, the reads whose callers had left waited in PostgreSQL indefinitely, piling up
  // against max_connections as the console polled. They end at the sink's read_timeout now (30 s
  // by default; 2 s here).
  const TOKEN = 'pg-leaving-admin-token-0123456789'
  const schema = uniqueSchema('leaving')
  let gw: TestGateway
  let locker: pg.Client

  beforeAll(async () => {
    locker = new pg.Client({ connectionString: SHARED_POSTGRES })
    await locker.connect()
    gw = await startTestGateway({ admin: { token: TOKEN }, audit: { sinks: [{ type: 'postgres', url: SHARED_POSTGRES, schema, read_timeout: '2s' }] }, routes: [] })
    await waitFor(async () => (await db.query('SELECT to_regclass($1) AS t', [`${schema}.audit_records`])).rows[0].t !== null, 'the audit table')
  }, 30_000)

  afterAll(async () => {
    await locker?.query('ROLLBACK').catch(() => {})
    await locker?.end()
    await gw?.close()
    await dropSchema(SHARED_POSTGRES, schema)
  }, 60_000)

  const waiting = async () => (await db.query("SELECT count(*)::int AS n FROM pg_stat_activity WHERE query LIKE $1 AND wait_event_type = 'Lock' AND pid <> pg_backend_pid()", [`%FROM ${schema}.audit_records%`])).rows[0].n as number

  it('ends them in PostgreSQL within the read bound', async () => {
    await locker.query(`BEGIN; LOCK TABLE ${schema}.audit_records IN ACCESS EXCLUSIVE MODE`)
    const asked = Date.now()
    for (const path of ['/api/audit?limit=5', '/api/overview?since=1h', '/api/audit/page']) {
      await request(`${gw.adminUrl}${path}`, { headers: { authorization: `Bearer ${TOKEN}` }, signal: AbortSignal.timeout(500) }).catch(() => {})
    }
    expect(await waiting()).toBeGreaterThan(0)
    await waitFor(async () => (await waiting()) === 0, 'the abandoned reads to end', 15_000)
    // Ended by read_timeout (2 s), not by the 30 s default nor the client's own bound 5 s later.
    expect(Date.now() - asked).toBeLessThan(6_000)
  }, 60_000)
})
