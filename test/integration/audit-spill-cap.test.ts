// audit.spill_max_bytes against a real PostgreSQL that is stopped: the spill files stop growing at
// the cap, and the gateway either refuses what it could not record (on_spill_full: refuse, the
// default: 503 audit_unavailable, not ready) or keeps serving and counts the records it loses (drop).
// A probe found a PostgreSQL away for hours could fill a node's disk with spill.
import { readdirSync, statSync } from 'node:fs'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import pg from 'pg'
import { request } from 'undici'
import { describe, expect, it } from 'vitest'
import { refuseHeadroom } from '../../src/config/index.ts'
import { verifyAudit } from '../../src/audit/verify.ts'
import { verifyReport } from '../../src/cli/audit.ts'
import { startTestGateway, type TestGateway } from '../helpers/gateway.ts'
import { auditRecordCount, startPostgres, uniqueSchema, type PrivatePostgres } from '../helpers/postgres.ts'
import { startUpstream } from '../helpers/upstream.ts'
import { metricValue, waitFor } from '../helpers/wait.ts'

const CAP = 1_048_576 // the smallest spill_max_bytes: ~1,700 records

function spillBytes(dir: string): number {
  return readdirSync(dir).filter((name) => name.endsWith('.ndjson')).reduce((sum, name) => sum + statSync(join(dir, name)).size, 0)
}

/** A gateway whose one audit sink is the PostgreSQL at `pgUrl`, its spill capped at CAP, in front of one upstream. */
function cappedConfig(pgUrl: string, schema: string, spillDir: string, upstreamUrl: string, onSpillFull: 'refuse' | 'drop' = 'refuse'): Record<string, unknown> {
  return {
    audit: { sinks: [{ type: 'postgres', url: pgUrl, schema }], spill_dir: spillDir, flush_interval: '20ms', spill_max_bytes: CAP, on_spill_full: onSpillFull },
    upstreams: [{ name: 'api', url: upstreamUrl }],
    routes: [{ id: 'open', path: '/*', upstream: 'api', public: true }],
  }
}

async function withOutage(onSpillFull: 'refuse' | 'drop', body: (gw: TestGateway, server: PrivatePostgres, schema: string, spillDir: string) => Promise<void>): Promise<void> {
  const upstream = await startUpstream((_req, res) => {
    res.end('ok')
  })
  const server = await startPostgres()
  const schema = uniqueSchema('spillcap')
  let spillDir = ''
  const gw = await startTestGateway((dir) => {
    spillDir = join(dir, 'spill')
    return cappedConfig(server.url, schema, spillDir, upstream.url, onSpillFull)
  })
  try {
    await waitFor(async () => (await auditRecordCount(server.url, schema)) === 0, 'the schema')
    await server.stop()
    await body(gw, server, schema, spillDir)
  } finally {
    await gw.close()
    await upstream.close()
    await server.destroy()
  }
}

/** Sends requests 4 at a time until `until` says stop (or `max` are sent); the statuses seen, in order. */
async function send(gw: TestGateway, max: number, until: (status: number) => boolean = () => false): Promise<number[]> {
  const statuses: number[] = []
  let stop = false
  const one = async () => {
    while (!stop && statuses.length < max) {
      const res = await request(`${gw.url}/r${statuses.length}`)
      await res.body.dump()
      statuses.push(res.statusCode)
      if (until(res.statusCode)) stop = true
    }
  }
  await Promise.all([one(), one(), one(), one()])
  return statuses
}

describe('audit.spill_max_bytes', () => {
  it('on_spill_full: refuse — at the cap requests get 503 audit_unavailable and the gateway says not ready; every request answered is recorded once the sink is back', { timeout: 90_000 }, async () => {
    await withOutage('refuse', async (gw, server, schema, spillDir) => {
      const statuses = await send(gw, 6_000, (status) => status === 503)
      expect(statuses).toContain(503)
      expect(statuses.filter((s) => s === 200).length).toBeGreaterThan(1_000) // the cap was reached, not a failure at once

      const refused = await request(`${gw.url}/after-the-cap`)
      expect(refused.statusCode).toBe(503)
      expect(refused.headers['content-type']).toBe('application/problem+json')
      expect(refused.headers['retry-after']).toBe('5')
      const problem = (await refused.body.json()) as { code: string; detail: string }
      expect(problem.code).toBe('audit_unavailable')
      expect(problem.detail).toContain('spill_max_bytes')

      const ready = await request(`${gw.adminUrl}/readyz`)
      const readiness = (await ready.body.json()) as { checks: Record<string, string> }
      expect(ready.statusCode).toBe(503)
      expect(readiness.checks.audit_spill).toBe('full (audit.spill_max_bytes): refusing requests')
      // Said by the audit worker, relayed to the log after its state reached /readyz: waited for
      // (read at once, a loaded machine had not written it yet).
      await waitFor(() => gw.logs.join('').includes('requests are refused with 503 audit_unavailable'), 'the log line saying requests are refused')
      const onDisk = spillBytes(spillDir)
      expect(onDisk).toBeGreaterThanOrEqual(CAP)
      expect(onDisk).toBeLessThanOrEqual(CAP + refuseHeadroom(CAP))
      expect(await metricValue(gw.adminUrl, 'bouncer_audit_spill_bytes')).toBeGreaterThanOrEqual(CAP)

      await server.start()
      const refusedBefore = statuses.filter((s) => s === 503).length + 1 // and /after-the-cap
      const retries: number[] = []
      await waitFor(async () => {
        const res = await request(`${gw.url}/back`)
        await res.body.dump()
        retries.push(res.statusCode)
        return res.statusCode === 200
      }, 'served again once the spill is replayed', 30_000)
      const sent = statuses.length + 1 + retries.length
      const refusals = refusedBefore + retries.filter((s) => s === 503).length
      // Every record is stored but refusals past the spill's headroom (a client retrying at once
      // while the spill replays): those are counted as dropped, and only those.
      await waitFor(async () => (await auditRecordCount(server.url, schema)) - (gw.state.audit.stats().dropped > 0 ? 1 : 0) + gw.state.audit.stats().dropped === sent, 'every record stored or counted', 30_000)
      const { dropped } = gw.state.audit.stats()
      expect(dropped).toBeLessThanOrEqual(refusals)
      const client = new pg.Client({ connectionString: server.url })
      await client.connect()
      const answered = Number((await client.query(`SELECT count(*) AS n FROM ${schema}.audit_records WHERE status = 200`)).rows[0].n)
      await client.end()
      expect(answered).toBe(statuses.filter((s) => s === 200).length + 1) // every answered request, the last /back too
      // Records lost to a full spill are lost before they are numbered: the chain stays whole, and
      // says how many (a records_lost record) once there is room.
      expect(await verifyAudit({ type: 'postgres', url: server.url, schema })).toMatchObject({ ok: true, problems: [] })
      const after = await request(`${gw.adminUrl}/readyz`)
      expect({ status: after.statusCode, body: await after.body.json() }).toMatchObject({ status: 200 })
      // Said once for the filling, not again as the replay freed room and the retries' records took it.
      expect(gw.logs.join('').split('requests are refused with 503 audit_unavailable').length - 1).toBe(1)
    })
  })

  it('on_spill_full: drop — requests keep their answers, the spill stops at the cap, the lost records are counted and logged once, and the chain says how many', { timeout: 90_000 }, async () => {
    await withOutage('drop', async (gw, server, schema, spillDir) => {
      const statuses = await send(gw, 2_600)
      expect(new Set(statuses)).toEqual(new Set([200]))
      await waitFor(() => gw.state.audit.stats().dropped > 0, 'records dropped at the cap', 10_000)
      // Every record spilled or dropped (the worker reports its counters every second), none lost otherwise.
      // Every record spilled or dropped, and a record of each run of losses where a later batch had room.
      await waitFor(() => gw.state.audit.stats().spilled + gw.state.audit.stats().dropped >= statuses.length, 'every record handled')
      expect(spillBytes(spillDir)).toBeLessThanOrEqual(CAP)
      expect(gw.logs.filter((line) => line.includes('audit records lost: every sink is away and the spill files are full (audit.spill_max_bytes)')).length).toBe(1)
      const ready = (await (await request(`${gw.adminUrl}/readyz`)).body.json()) as { ready: boolean; checks: Record<string, string> }
      expect(ready.checks.audit_spill).toBe('full (audit.spill_max_bytes): dropping records')

      // The sink back: what was spilled is replayed, then one record says how many were lost, and
      // the chain verifies (numbered, then dropped, they left a gap that failed verify for good).
      await server.start()
      const { dropped } = gw.state.audit.stats()
      const client = new pg.Client({ connectionString: server.url })
      const query = async (sql: string) => {
        await client.connect().catch(() => {}) // once; later calls find it connected
        return (await client.query(sql)).rows
      }
      try {
        await waitFor(async () => (await auditRecordCount(server.url, schema)) >= statuses.length - dropped, 'the spill replayed', 30_000)
        expect((await request(`${gw.url}/after`, { headers: { 'x-request-id': 'after-the-outage' } })).statusCode).toBe(200)
        await waitFor(async () => (await query(`SELECT 1 FROM ${schema}.audit_records WHERE request_id = 'after-the-outage'`)).length === 1, 'the request after', 30_000)
        const lost = await query(`SELECT detail, decision, status FROM ${schema}.audit_records WHERE code = 'records_lost' ORDER BY seq`)
        expect(lost.length).toBeGreaterThan(0)
        for (const row of lost) expect(row).toMatchObject({ decision: 'error', status: 0, detail: expect.stringMatching(/^\d+ audit records? (was|were) lost from \S+: every sink was away and the spill files held audit\.spill_max_bytes \(counted in bouncer_audit_dropped_total\)\.$/) })
        // Every request is either stored or counted in a records_lost record, whose counts add up to what was dropped.
        const counted = lost.reduce((sum, row) => sum + Number(/^\d+/.exec(String(row.detail))?.[0]), 0)
        expect(counted).toBe(dropped)
        expect(await auditRecordCount(server.url, schema)).toBe(statuses.length - dropped + lost.length + 1)
        const verified = await verifyAudit({ type: 'postgres', url: server.url, schema })
        expect(verified).toMatchObject({ ok: true, problems: [] })
        expect(verified.losses.map((l) => l.detail)).toEqual(lost.map((row) => row.detail)) // verify names each
        expect(verifyReport(verified).split('\n').filter((line) => line.includes(' lost records, said at ')).length).toBe(lost.length)
      } finally {
        await client.end().catch(() => {})
      }
    })
  })

  // A probe: a gateway started on a spill an earlier run had filled answered its first requests 200
  // (30 in a row, the sink still away) until its audit worker had started and reported.
  it('on_spill_full: refuse — a gateway started on a spill an earlier run filled refuses from its first request', { timeout: 90_000 }, async () => {
    const upstream = await startUpstream((_req, res) => {
      res.end('ok')
    })
    const server = await startPostgres()
    const schema = uniqueSchema('spillcap')
    const spillDir = await mkdtemp(join(tmpdir(), 'bouncer-spill-cap-'))
    const config = cappedConfig(server.url, schema, spillDir, upstream.url)
    let second: TestGateway | undefined
    try {
      const first = await startTestGateway(config)
      try {
        await waitFor(async () => (await auditRecordCount(server.url, schema)) === 0, 'the schema')
        await server.stop()
        expect(await send(first, 6_000, (status) => status === 503)).toContain(503)
      } finally {
        await first.close()
      }
      expect(spillBytes(spillDir)).toBeGreaterThanOrEqual(CAP)

      second = await startTestGateway(config)
      const statuses: number[] = []
      for (let i = 0; i < 5; i++) {
        const res = await request(`${second.url}/restarted${i}`)
        await res.body.dump()
        statuses.push(res.statusCode)
      }
      expect(statuses).toEqual([503, 503, 503, 503, 503])
      const ready = await request(`${second.adminUrl}/readyz`)
      expect(ready.statusCode).toBe(503)
      expect(((await ready.body.json()) as { checks: Record<string, string> }).checks.audit_spill).toBe('full (audit.spill_max_bytes): refusing requests')
      // And its log says why, though no append filled the spill in this run (its first look did).
      const restarted = second
      await waitFor(() => restarted.logs.join('').includes('requests are refused with 503 audit_unavailable'), 'the restarted gateway\'s log line saying requests are refused')

      await server.start()
      const gw = second
      await waitFor(async () => {
        const res = await request(`${gw.url}/back`)
        await res.body.dump()
        return res.statusCode === 200
      }, 'served again once the spill is replayed', 30_000)
      // The restart's refusals are recorded with the rest.
      await waitFor(async () => (await auditRecordCount(server.url, schema)) > 0, 'the spill replayed', 30_000)
      const client = new pg.Client({ connectionString: server.url })
      await client.connect()
      const refused = Number((await client.query(`SELECT count(*) AS n FROM ${schema}.audit_records WHERE path LIKE '/restarted%' AND status = 503`)).rows[0].n)
      await client.end()
      expect(refused).toBe(5)
    } finally {
      await second?.close()
      await upstream.close()
      await server.destroy()
      await rm(spillDir, { recursive: true, force: true })
    }
  })

  // A probe: spill files adopted from a run with another number of workers (spill-adopt.ts) wait for
  // their sink like any, but bouncer_audit_spill_bytes said 0 while they held a MiB.
  it('bouncer_audit_spill_bytes counts spill files adopted from a run with another number of workers', { timeout: 90_000 }, async () => {
    const upstream = await startUpstream((_req, res) => {
      res.end('ok')
    })
    const server = await startPostgres()
    const schema = uniqueSchema('spillcap')
    const spillDir = await mkdtemp(join(tmpdir(), 'bouncer-spill-cap-'))
    const config = (dir: string) => cappedConfig(server.url, schema, dir, upstream.url, 'drop')
    let second: TestGateway | undefined
    let sent: number
    try {
      // What a worker w1 of server.workers left: spill_dir/w1.
      const first = await startTestGateway(config(join(spillDir, 'w1')))
      try {
        await waitFor(async () => (await auditRecordCount(server.url, schema)) === 0, 'the schema')
        await server.stop()
        sent = (await send(first, 300)).length
      } finally {
        await first.close()
      }
      const left = spillBytes(join(spillDir, 'w1')) - statSync(join(spillDir, 'w1', 'checkpoints.ndjson')).size // the sink's spill file
      expect(left).toBeGreaterThan(100_000)

      second = await startTestGateway(config(spillDir)) // one process: w1's files are adopted
      const gw = second
      await waitFor(async () => (await metricValue(gw.adminUrl, 'bouncer_audit_spill_bytes')) === left, 'the adopted files counted')
      await server.start()
      await waitFor(async () => (await metricValue(gw.adminUrl, 'bouncer_audit_spill_bytes')) === 0, 'the adopted files replayed', 30_000)
      expect(await auditRecordCount(server.url, schema)).toBe(sent)
    } finally {
      await second?.close()
      await upstream.close()
      await server.destroy()
      await rm(spillDir, { recursive: true, force: true })
    }
  })
})
