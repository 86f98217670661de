// The SQLite log's per-minute rollups are kept per batch (issue 15: a trigger cost ~7 µs a record):
// after batches, replays and a log migrated from the trigger, they equal the rollups recomputed
// from the records, row for row.
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { DatabaseSync } from 'node:sqlite'
import { afterEach, describe, expect, it } from 'vitest'
import { chain, GENESIS_HASH } from '../../../src/audit/record.ts'
import type { StoredRow } from '../../../src/audit/sinks/sink.ts'
import { createSqliteSink, ROLLUP_BINS_PER_OCTAVE } from '../../../src/audit/sinks/sqlite.ts'

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

function expectRollupsMatchRecords(path: string, records: number): void {
  const db = new DatabaseSync(path, { readOnly: true, timeout: 5000 })
  try {
    expect((db.prepare('SELECT COUNT(*) AS n FROM audit_records').get() as { n: number }).n).toBe(records)
    for (const [table, recomputed] of Object.entries(RECOMPUTED)) {
      const kept = db.prepare(`SELECT * FROM ${table} ORDER BY ${ORDER[table as keyof typeof ORDER]}`).all()
      expect(kept.length).toBeGreaterThan(0)
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

  it('age out with the records', async () => {
    const path = tempDb()
    const sink = createSqliteSink(path, { durable: false })
    await sink.open()
    await sink.write(rows())
    await sink.deleteBefore(Date.UTC(2026, 11, 1, 0, 10))
    await sink.write(rows()) // a replay after retention: the deleted records come back, counted again
    await sink.close()
    expectRollupsMatchRecords(path, 1_000)
  })
})
