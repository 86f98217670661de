// The SQLite log's per-minute rollups are kept per batch (issue 15: a trigger cost ~7 µs a record),
// counted from the batch's own values when every row is new (sqlite-rollup.ts) and read back in
// SQL when a replay is among them: after batches, replays and a log migrated from the trigger, they
// equal the rollups recomputed from the records, row for row.
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { DatabaseSync } from 'node:sqlite'
import fc from 'fast-check'
import { afterEach, describe, expect, it } from 'vitest'
import { chain, GENESIS_HASH, link, recordLine } from '../../../src/audit/record.ts'
import { LinkedRow, type StoredRow } from '../../../src/audit/sinks/sink.ts'
import { createSqliteSink, ROLLUP_BINS_PER_OCTAVE } from '../../../src/audit/sinks/sqlite.ts'
import { latencyBin } from '../../../src/audit/sinks/sqlite-rollup.ts'
import type { RequestContext } from '../../../src/request/index.ts'
import { testCutSigner } from '../../helpers/audit.ts'

const dirs: string[] = []
afterEach(() => {
  for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true })
})

function tempDb(): string {
  const dir = mkdtempSync(join(tmpdir(), 'bouncer-audit-rollups-'))
  dirs.push(dir)
  return join(dir, 'audit.db')
}

/** 1,000 records over ~33 minutes: allowed, denied (no upstream), anonymous, errors. */
function rows(): StoredRow[] {
  let prev = GENESIS_HASH
  return Array.from({ length: 1_000 }, (_, i) => {
    const kind = i % 4
    const record = chain({
      id: `id-${i}`, time: new Date(Date.UTC(2026, 11, 1, 0, 0, 0, i * 2_000)).toISOString(), request_id: `r${i}`, method: 'GET', path: '/x',
      status: kind === 1 ? 403 : kind === 3 ? 502 : 200, decision: kind === 1 ? 'deny' : kind === 3 ? 'error' : 'allow', code: kind === 1 ? 'policy_denied' : kind === 3 ? 'upstream_unavailable' : null,
      statement: kind === 1 ? 'NoPII' : null, subject: kind === 2 ? null : `svc-${i % 7}`, roles: [], source_ip: '::1', route: `route-${i % 3}`,
      duration_ms: 1 + (i % 40), upstream_ms: kind === 1 ? null : 0.5 + (i % 30), bytes_in: 0, bytes_out: 0,
    }, prev)
    prev = record.hash
    return { chain: 'c', seq: i + 1, record }
  })
}

const bin = (column: string) => `CAST(round(log2(max(${column}, 0.01)) * ${ROLLUP_BINS_PER_OCTAVE}) AS INTEGER)`
const RECOMPUTED = {
  audit_rollup_outcomes: `SELECT time_ms / 60000 AS minute, decision, coalesce(code, '') AS code, coalesce(statement, '') AS statement, coalesce(route, '') AS route, COUNT(*) AS n
    FROM audit_records GROUP BY 1, 2, 3, 4, 5 ORDER BY 1, 2, 3, 4, 5`,
  audit_rollup_principals: `SELECT time_ms / 60000 AS minute, coalesce(subject, '') AS subject, decision, COUNT(*) AS n FROM audit_records GROUP BY 1, 2, 3 ORDER BY 1, 2, 3`,
  audit_rollup_latency: `SELECT * FROM (
    SELECT time_ms / 60000 AS minute, 0 AS kind, ${bin('duration_ms')} AS bin, COUNT(*) AS n FROM audit_records WHERE upstream_ms IS NOT NULL GROUP BY 1, 3
    UNION ALL SELECT time_ms / 60000, 1, ${bin('upstream_ms')}, COUNT(*) FROM audit_records WHERE upstream_ms IS NOT NULL GROUP BY 1, 3) ORDER BY 1, 2, 3`,
}
const ORDER = { audit_rollup_outcomes: '1, 2, 3, 4, 5', audit_rollup_principals: '1, 2, 3', audit_rollup_latency: '1, 2, 3' }

/** `filled`: every table has rows (the fixed records have upstream latencies; generated ones may not). */
function expectRollupsMatchRecords(path: string, records: number, filled = true): void {
  const db = new DatabaseSync(path, { readOnly: true, timeout: 5000 })
  try {
    expect((db.prepare('SELECT COUNT(*) AS n FROM audit_records').get() as { n: number }).n).toBe(records)
    for (const [table, recomputed] of Object.entries(RECOMPUTED)) {
      const kept = db.prepare(`SELECT * FROM ${table} ORDER BY ${ORDER[table as keyof typeof ORDER]}`).all()
      if (filled) expect(kept.length).toBeGreaterThan(0)
      expect(kept).toEqual(db.prepare(recomputed).all())
    }
    expect(db.prepare("SELECT name FROM sqlite_master WHERE type = 'trigger'").all()).toEqual([])
  } finally {
    db.close()
  }
}

describe('the SQLite rollups, kept per batch', () => {
  it('count each inserted record once, over batches and a replayed batch', async () => {
    const path = tempDb()
    const all = rows()
    const sink = createSqliteSink(path, { durable: false })
    await sink.open()
    await sink.write(all.slice(0, 400))
    await sink.write(all.slice(300, 700)) // 100 replayed, 300 new
    await sink.write(all.slice(0, 700)) // a whole replay: nothing new
    await sink.close()
    expectRollupsMatchRecords(path, 700)
    await sink.open()
    await sink.write(all.slice(650))
    await sink.close()
    expectRollupsMatchRecords(path, 1_000)
  })

  it('migrate a log kept by the old per-record trigger: the trigger is dropped, its counts kept, nothing counted twice', async () => {
    const path = tempDb()
    const all = rows()
    const sink = createSqliteSink(path, { durable: false })
    await sink.open()
    await sink.write(all.slice(0, 500))
    await sink.close()
    // As an older gateway left it: complete rollups and the trigger that kept them.
    const old = new DatabaseSync(path)
    old.exec(`CREATE TRIGGER audit_rollup AFTER INSERT ON audit_records BEGIN
      INSERT INTO audit_rollup_principals VALUES (NEW.time_ms / 60000, coalesce(NEW.subject, ''), NEW.decision, 1) ON CONFLICT DO UPDATE SET n = n + 1;
    END`)
    old.close()
    await sink.open()
    await sink.write(all.slice(400))
    await sink.close()
    expectRollupsMatchRecords(path, 1_000)
  })

  it('count, on open, what a version without rollups wrote meanwhile, and nothing twice that one with them wrote (a downgrade and back)', async () => {
    const path = tempDb()
    const all = rows()
    const sink = createSqliteSink(path, { durable: false })
    await sink.open()
    await sink.write(all.slice(0, 300))
    await sink.close()
    // A version without rollups: its records land, the rollups never hear of them. Copied from a
    // scratch log the sink wrote, whose chain 'c' is number 1 as here.
    const scratch = tempDb()
    const other = createSqliteSink(scratch, { durable: false })
    await other.open()
    await other.write(all.slice(300, 600))
    await other.close()
    const old = new DatabaseSync(path)
    const columns = (old.prepare('PRAGMA table_info(audit_records)').all() as Array<{ name: string }>).map((c) => `"${c.name}"`).join(', ')
    old.exec(`ATTACH '${scratch}' AS old; INSERT INTO audit_records (${columns}) SELECT ${columns} FROM old.audit_records; DETACH old`)
    old.close()
    await sink.open()
    await sink.write(all.slice(600, 700))
    await sink.close()
    expectRollupsMatchRecords(path, 700)
    // A version that kept the rollups per batch but not how far they count: its batch is counted
    // already, and the coverage it left behind is stale.
    const stale = (new DatabaseSync(path, { readOnly: true }).prepare('SELECT last_rowid FROM audit_rollup_covered').get() as { last_rowid: number }).last_rowid
    await sink.open()
    await sink.write(all.slice(700, 850))
    await sink.close()
    const rewind = new DatabaseSync(path)
    rewind.prepare('UPDATE audit_rollup_covered SET last_rowid = ?').run(stale)
    rewind.close()
    await sink.open()
    await sink.write(all.slice(850))
    await sink.close()
    expectRollupsMatchRecords(path, 1_000)
  })

  it('age out with the records', async () => {
    const path = tempDb()
    const sink = createSqliteSink(path, { durable: false })
    await sink.open()
    await sink.write(rows())
    await sink.deleteBefore(Date.UTC(2026, 11, 1, 0, 10), testCutSigner())
    await sink.write(rows()) // a replay after retention: the deleted records come back, counted again
    await sink.close()
    expectRollupsMatchRecords(path, 1_000)
  })

  it('count as SQL would over any values: latencies of every size, texts holding the key\'s separators, lines as the request thread writes them', async () => {
    const text = fc.oneof(fc.constant(null), fc.constantFrom('', '1', '|', '1|', '|1', 'a|1|b', 'route-1', 'é'), fc.string({ maxLength: 6 }))
    const ms = fc.oneof(fc.constantFrom(0, 0.001, 0.009, 0.01, 0.011, 1, 2, 1000, 60_000, 3_600_000), fc.integer({ min: 0, max: 10_000_000 }).map((n) => n / 1000))
    const record = fc.record({
      minuteOffset: fc.integer({ min: 0, max: 5 }), decision: fc.constantFrom('allow', 'deny', 'error'), code: text, statement: text, route: text, subject: text,
      duration: ms, upstream: fc.option(ms, { nil: null }),
    })
    await fc.assert(fc.asyncProperty(fc.array(record, { minLength: 1, maxLength: 60 }), async (records) => {
      const path = tempDb()
      const sink = createSqliteSink(path, { durable: false })
      await sink.open()
      let prev = GENESIS_HASH
      const batch = records.map((r, i) => {
        // A line as recordLine writes it, linked as the worker links it: the path the gateway takes.
        const line = recordLine({
          startedAt: Date.UTC(2026, 11, 1, 0, r.minuteOffset, 30), startMono: 0, id: `r${i}`, method: 'GET', path: '/x', query: '', headers: null,
          clientIp: '::1', trace: null, route: r.route === null ? null : { id: r.route }, identity: r.subject === null ? null : { iss: 'https://idp', sub: r.subject, clientId: null },
          roles: [], statement: r.statement, decision: r.decision, code: r.code, error: null, limit: null, upstream: null, upstreamStatus: null,
          upstreamMs: r.upstream, attempts: 0, status: 200, bytesIn: 0, bytesOut: 0, masked: null, tool: null, argsSha256: null, args: null, note: null,
        } as unknown as RequestContext, 'test', r.duration)
        const linked = link(line, prev)
        prev = linked.hash
        return new LinkedRow('c', i + 1, linked)
      })
      await sink.write(batch)
      await sink.close()
      expectRollupsMatchRecords(path, records.length, false)
    }), {
      numRuns: 40,
      // Two outcomes whose texts joined by the separator alone would be one key: 'a|' + 'b' and 'a' + '|b'.
      examples: [[[
        { minuteOffset: 0, decision: 'deny', code: 'a|', statement: 'b', route: 'r', subject: 's', duration: 1, upstream: null },
        { minuteOffset: 0, decision: 'deny', code: 'a', statement: '|b', route: 'r', subject: 's', duration: 1, upstream: null },
      ]]],
    })
  })

  it('bins a latency as SQLite does', () => {
    const db = new DatabaseSync(':memory:')
    const sqlBin = db.prepare(`SELECT ${bin('?1')} AS b`)
    const values = [0, 0.001, 0.01, 0.0125, 0.5, 1, 1.5, 2, 1e-9, 1e9, ...Array.from({ length: 20_000 }, (_, i) => (i * 7919) % 10_000_000 / 1000)]
    const differing = values.filter((v) => (sqlBin.get(v) as { b: number }).b !== latencyBin(v))
    db.close()
    expect(differing).toEqual([])
  })
})
