// Found by a probe: with `durability: sync`, a PostgreSQL that stops answering (a network stall, a
// proxy whose backend went) held every response for the pool's fixed 15 s query timeout, with
// `bouncer_audit_sink_up` still 1 meanwhile. A write unanswered past the sink's `write_timeout` now
// counts as failed: its records spill to disk (durably), the responses go, the sink reads down; once
// PostgreSQL answers again the spill is replayed, each record once.
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import pg from 'pg'
import { request } from 'undici'
import { afterAll, beforeAll, expect, it } from 'vitest'
import { createPostgresSink } from '../../src/audit/sinks/postgres.ts'
import { verifyAudit } from '../../src/audit/verify.ts'
import { startFreezingRelay, type FreezingRelay } from '../helpers/faults.ts'
import { startTestGateway, type TestGateway } from '../helpers/gateway.ts'
import { dropSchema, SHARED_POSTGRES, uniqueSchema } from '../helpers/postgres.ts'
import { startUpstream, type TestUpstream } from '../helpers/upstream.ts'
import { metricValue, waitFor } from '../helpers/wait.ts'

const schema = uniqueSchema('stall')
let dir: string
let relay: FreezingRelay
let upstream: TestUpstream
let gateway: TestGateway

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'bouncer-pg-stall-'))
  relay = await startFreezingRelay(5432)
  upstream = await startUpstream((_req, res) => void res.end('ok'))
  gateway = await startTestGateway({
    admin: { listen: '127.0.0.1:0', token: 'audit-postgres-stall-admin-token-01' },
    audit: {
      sinks: [{ type: 'postgres', url: `postgres://postgres@127.0.0.1:${relay.port}/test`, schema, write_timeout: '500ms' }],
      durability: 'sync',
      spill_dir: join(dir, 'spill'),
      flush_interval: '10ms',
    },
    upstreams: [{ name: 'api', url: upstream.url }],
    routes: [{ id: 'r', path: '/r', upstream: 'api', public: true }],
  })
}, 60_000)

afterAll(async () => {
  await gateway?.close()
  relay?.close()
  await upstream?.close()
  await dropSchema(SHARED_POSTGRES, schema).catch(() => {})
  await rm(dir, { recursive: true, force: true })
})

async function hit(id: string): Promise<{ status: number; ms: number }> {
  const started = Date.now()
  const res = await request(`${gateway.url}/r`, { headers: { 'x-request-id': id } })
  await res.body.dump()
  return { status: res.statusCode, ms: Date.now() - started }
}

async function stored(): Promise<string[]> {
  const client = new pg.Client({ connectionString: SHARED_POSTGRES })
  await client.connect()
  try {
    return (await client.query(`SELECT request_id FROM ${schema}.audit_records ORDER BY seq`)).rows.map((row) => row.request_id as string)
  } finally {
    await client.end()
  }
}

const sinkUp = `bouncer_audit_sink_up{sink="postgres:${schema}"}`

it('a stalled PostgreSQL holds sync responses for write_timeout, not 15 s; the sink reads down; every record arrives once it answers', async () => {
  const sent: string[] = []
  for (let i = 0; i < 3; i++) {
    sent.push(`before-${i}`)
    expect((await hit(`before-${i}`)).status).toBe(200)
  }
  expect(await metricValue(gateway.adminUrl, sinkUp)).toBe(1)

  relay.freeze()
  const during: number[] = []
  for (let i = 0; i < 3; i++) {
    sent.push(`during-${i}`)
    const { status, ms } = await hit(`during-${i}`)
    expect(status).toBe(200)
    during.push(ms)
  }
  // The first waits out the 500 ms deadline and the spill's fsync; the rest go straight to the spill.
  expect(Math.max(...during), `${during.join(', ')} ms`).toBeLessThan(5_000) // was 15 s each
  // The worker reports its sinks' state every second.
  await waitFor(async () => (await metricValue(gateway.adminUrl, sinkUp)) === 0, 'the sink to read down', 5_000)

  relay.thaw()
  // The recovery waits for the write it gave up on (the pool's own timeout ends it), then replays.
  await waitFor(async () => (await metricValue(gateway.adminUrl, sinkUp)) === 1, 'the sink to be back', 40_000)
  sent.push('after-0')
  expect((await hit('after-0')).status).toBe(200)
  expect(await stored()).toEqual(sent)
  expect(await verifyAudit({ type: 'postgres', url: SHARED_POSTGRES, schema })).toMatchObject({ ok: true, checked: sent.length, problems: [] })
}, 90_000)

// Found by the spill cap's probe: stopping PostgreSQL killed the audit worker now and then ("the
// audit worker failed": Connection terminated unexpectedly, read ECONNRESET), taking the records it
// held: a client the sink had checked out had no 'error' listener when its connection went, and
// pg emits the loss on the client. Here the connection goes while append waits on the chain's lock.
it('a connection lost under a client the sink holds fails that call, not the thread', async () => {
  const own = uniqueSchema('lost')
  const sink = createPostgresSink({ url: SHARED_POSTGRES, schema: own })
  const holder = new pg.Client({ connectionString: SHARED_POSTGRES })
  const uncaught: unknown[] = []
  const onUncaught = (err: unknown) => void uncaught.push(err)
  process.on('uncaughtException', onUncaught)
  try {
    await sink.open()
    await holder.connect()
    await holder.query('BEGIN')
    await holder.query('SELECT pg_advisory_xact_lock(hashtext($1))', [`bouncer-audit-chain:${own}:c`]) // the lock append takes
    const holderPid = Number((await holder.query('SELECT pg_backend_pid() AS pid')).rows[0].pid)
    const appended = (sink.append as NonNullable<typeof sink.append>)('c', () => { throw new Error('never built: the lock is not had') }).then(() => 'appended', (err: Error) => err.message)
    let waiting: number | undefined
    await waitFor(async () => {
      waiting = (await holder.query('SELECT pid FROM pg_stat_activity WHERE $1 = ANY(pg_blocking_pids(pid))', [holderPid])).rows[0]?.pid as number | undefined
      return waiting !== undefined
    }, 'append waiting on the lock')
    await holder.query('SELECT pg_terminate_backend($1)', [waiting])
    expect(await appended).toMatch(/terminat/)
    await new Promise((resolve) => setImmediate(resolve)) // the socket's end, after the error answer
    expect(uncaught).toEqual([])
  } finally {
    process.off('uncaughtException', onUncaught)
    await holder.end().catch(() => {})
    await sink.close()
    await dropSchema(SHARED_POSTGRES, own)
  }
})
