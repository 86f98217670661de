// The console's aggregates (src/audit/aggregate.ts) read the same answers from SQLite and from
// PostgreSQL, and SQLite's per-minute rollups agree with the records they sum: counted once per
// record actually written (a replayed batch is not counted twice), and aged out with them.
import { mkdtemp, rm } from 'node:fs/promises'
import { DatabaseSync } from 'node:sqlite'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { auditDenials, auditOverview, bucketFor, type AggregateQuery } from '../../src/audit/aggregate.ts'
import { chain, GENESIS_HASH, type RecordInput } from '../../src/audit/record.ts'
import type { StoredRow } from '../../src/audit/sinks/sink.ts'
import { createPostgresSink } from '../../src/audit/sinks/postgres.ts'
import { createSqliteSink } from '../../src/audit/sinks/sqlite.ts'
import { dropSchema, SHARED_POSTGRES, uniqueSchema } from '../helpers/postgres.ts'
import { testCutSigner } from '../helpers/audit.ts'

const NOW = Date.UTC(2026, 11, 1, 12, 0, 0)
const HOUR = 3_600_000
let dir: string
const schema = uniqueSchema('console_aggregates')

/** 3,000 records over the last 6 hours: reads allowed, a deny rule, an anonymous caller, upstream errors. */
function rows(): StoredRow[] {
  const out: StoredRow[] = []
  let prev = GENESIS_HASH
  for (let i = 0; i < 3_000; i++) {
    const kind = i % 10
    const base: RecordInput = {
      id: `r-${i}`, time: new Date(NOW - 6 * HOUR + i * 7_200).toISOString(), request_id: `q-${i}`, method: 'GET', path: `/sales/${i % 3}`,
      route: i % 4 === 0 ? 'sales.customers' : 'sales.daily', status: 200, decision: 'allow', statement: 'AllowReads', issuer: 'https://sso/', subject: `svc-${i % 5}`,
      client_id: null, roles: ['reports'], source_ip: '10.0.0.1', upstream: 'api', upstream_status: 200, duration_ms: 5 + (i % 50), upstream_ms: 4 + (i % 50),
      bytes_in: 0, bytes_out: 10,
    }
    const input: RecordInput = kind < 2
      ? { ...base, status: 403, decision: 'deny', code: 'policy_denied', statement: 'NoPII', actor: 'agent-7', credential: 'jwt', upstream: null, upstream_status: null, upstream_ms: null, duration_ms: 0.5 }
      : kind === 2 ? { ...base, status: 401, decision: 'deny', code: 'missing_token', statement: null, subject: null, issuer: null, upstream: null, upstream_status: null, upstream_ms: null, duration_ms: 0.2 }
        : kind === 3 ? { ...base, status: 502, decision: 'error', code: 'upstream_unavailable', upstream_status: null } : base
    const record = chain(input, prev)
    prev = record.hash
    out.push({ chain: 'test', seq: i + 1, record })
  }
  return out
}

const sqlite = () => ({ type: 'sqlite' as const, path: join(dir, 'audit.db') })
const postgres = { type: 'postgres' as const, url: SHARED_POSTGRES, schema }
const query = (hours: number, extra: Partial<AggregateQuery> = {}): AggregateQuery => ({ sinceMs: NOW - hours * HOUR, untilMs: NOW, bucketMs: bucketFor(hours * HOUR), ...extra })

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'bouncer-aggregates-'))
  const all = rows()
  const lite = createSqliteSink(sqlite().path, { durable: false })
  await lite.open()
  await lite.write(all.slice(0, 2_000))
  await lite.write(all.slice(1_500)) // 500 records again, as a replay after a crash writes them
  await lite.close()
  const pg = createPostgresSink({ url: SHARED_POSTGRES, schema })
  await pg.open()
  await pg.write(all)
  await pg.close()
})

afterAll(async () => {
  await rm(dir, { recursive: true, force: true })
  await dropSchema(SHARED_POSTGRES, schema)
})

describe('the console aggregates', () => {
  it('count every record once, by outcome, route, principal and reason, in SQLite and PostgreSQL alike', async () => {
    for (const hours of [0.5, 6]) { // half an hour reads the records; from an hour up, SQLite sums its rollups
      const [lite, pg] = await Promise.all([auditOverview(sqlite(), query(hours)), auditOverview(postgres, query(hours))])
      const expected = hours === 6 ? 3_000 : 250
      expect(lite.totals.requests, `${hours} h`).toBe(expected)
      expect(pg.totals).toEqual(lite.totals)
      expect(lite.totals).toEqual({ requests: expected, allow: expected * 0.6, deny: expected * 0.3, error: expected * 0.1 })
      expect(pg.outcomes).toEqual(lite.outcomes)
      expect(lite.outcomes.map((o) => o.key)).toEqual(['allow', 'deny:policy_denied', 'deny:missing_token', 'error:upstream_unavailable'])
      expect(pg.top_routes).toEqual(lite.top_routes)
      expect(pg.top_principals).toEqual(lite.top_principals)
      expect(pg.denial_reasons).toEqual(lite.denial_reasons)
      expect(lite.denial_reasons).toEqual([
        { code: 'policy_denied', statement: 'NoPII', count: expected * 0.2 },
        { code: 'missing_token', statement: null, count: expected * 0.1 },
      ])
      expect(lite.top_principals.find((p) => p.principal === null)).toMatchObject({ requests: expected * 0.1, denied: expected * 0.1 })
    }
  })

  it('give latency percentiles of forwarded requests, in all and at the upstream (the rollups within 6% of the exact ones)', async () => {
    for (const hours of [0.5, 6]) {
      const [lite, pg] = await Promise.all([auditOverview(sqlite(), query(hours)), auditOverview(postgres, query(hours))])
      lite.latency.total_p50.forEach((value, i) => {
        const exact = pg.latency.total_p50[i]
        if (exact === null || exact === undefined) return expect(value).toBeNull()
        expect(Math.abs((value as number) - exact) / exact, `bucket ${i}`).toBeLessThan(0.06)
        expect(lite.latency.upstream_p50[i] as number).toBeLessThanOrEqual(value as number)
      })
    }
  })

  it('filter by route and principal, and group denials by code × route × principal', async () => {
    const lite = await auditOverview(sqlite(), query(6, { route: 'sales.customers', principal: 'svc-0' }))
    const pg = await auditOverview(postgres, query(6, { route: 'sales.customers', principal: 'svc-0' }))
    expect(lite.totals).toEqual(pg.totals)
    expect(lite.top_routes.map((r) => r.route)).toEqual(['sales.customers'])
    const denials = await auditDenials(sqlite(), query(6))
    expect(await auditDenials(postgres, query(6))).toEqual(denials)
    expect(denials.reduce((sum, g) => sum + g.count, 0)).toBe(900)
    expect(denials[0]).toMatchObject({ code: 'policy_denied', count: expect.any(Number), sample: { statement: 'NoPII', status: 403 } })
    // What explaining a group again reads comes with it (the console read each group's newest record again for it, a query per group).
    expect(denials[0]?.sample).toMatchObject({ roles: ['reports'], actor: 'agent-7', credential: 'jwt' })
    expect(denials.find((g) => g.code === 'missing_token')?.sample).toMatchObject({ roles: ['reports'], actor: null, credential: null })
  })

  it('count a range that starts and ends mid-minute exactly, from the rollups as from the records', async () => {
    // 12:00:30 to 13:59:30 (an hour or more: SQLite sums its rollups); a minute's rollup holds
    // records from before the start and from after the end, which must not be counted.
    const q: AggregateQuery = { sinceMs: NOW - 2 * HOUR + 30_000, untilMs: NOW - 30_000, bucketMs: bucketFor(2 * HOUR - 60_000) }
    const [lite, pg] = await Promise.all([auditOverview(sqlite(), q), auditOverview(postgres, q)])
    const exact = rows().filter(({ record }) => Date.parse(record.time) >= q.sinceMs && Date.parse(record.time) < q.untilMs).length
    expect(lite.totals.requests).toBe(exact)
    expect(lite.totals).toEqual(pg.totals)
    expect(lite.outcomes).toEqual(pg.outcomes)
    expect(lite.top_routes).toEqual(pg.top_routes)
    expect(lite.top_principals).toEqual(pg.top_principals)
    expect(lite.denial_reasons).toEqual(pg.denial_reasons)
    // Each bucket's latency is the edge records' too: a bucket with forwarded requests has percentiles.
    lite.latency.total_p50.forEach((value, i) => expect(value === null, `bucket ${i}`).toBe(pg.latency.total_p50[i] === null))
  })

  it('age the rollups out with the records they count', async () => {
    const sink = createSqliteSink(sqlite().path, { durable: false })
    await sink.open()
    await sink.deleteBefore(NOW - 3 * HOUR, testCutSigner())
    await sink.close()
    const lite = await auditOverview(sqlite(), query(6))
    expect(lite.totals.requests).toBe(1_500)
    const db = new DatabaseSync(sqlite().path, { readOnly: true, timeout: 5000 })
    const summed = db.prepare('SELECT SUM(n) AS n FROM audit_rollup_outcomes').get() as { n: number }
    db.close()
    expect(summed.n).toBe(1_500)
  })
})
