// Schema 3 (issue 15): the SQLite log indexes time, subject and refusals only; a log of schema 2
// loses its route and decision indexes in place, and a search for refusals still uses an index.
// A new log has 16 KB pages.
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { DatabaseSync } from 'node:sqlite'
import { afterEach, describe, expect, it } from 'vitest'
import { chain, GENESIS_HASH } from '../../../src/audit/record.ts'
import { searchAudit } from '../../../src/audit/search.ts'
import { createSqliteSink, openSqlite } from '../../../src/audit/sinks/sqlite.ts'

const dirs: string[] = []
afterEach(() => {
  for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true })
})

function tempDb(): string {
  const dir = mkdtempSync(join(tmpdir(), 'bouncer-audit-idx-'))
  dirs.push(dir)
  return join(dir, 'audit.db')
}

const indexes = (db: DatabaseSync) => (db.prepare("SELECT name FROM sqlite_master WHERE type = 'index' AND name LIKE 'audit_%' ORDER BY name").all() as Array<{ name: string }>).map((r) => r.name)

describe('the SQLite audit log indexes', () => {
  it('a new log has the time, subject and refusals indexes; a schema 2 log is moved to them in place', () => {
    const path = tempDb()
    openSqlite(path).close()
    const db = new DatabaseSync(path)
    expect(indexes(db)).toEqual(['audit_console', 'audit_refused', 'audit_subject', 'audit_time'])
    expect(db.prepare('PRAGMA page_size').get()).toEqual({ page_size: 16384 }) // a new log's pages (issue 15)
    // Back to schema 2, as an older gateway left it: without the retention cut's signed columns (schemas 4 and 5) too.
    db.exec("DROP INDEX audit_refused; CREATE INDEX audit_route ON audit_records (route, time_ms); CREATE INDEX audit_decision ON audit_records (decision, time_ms); PRAGMA user_version = 2")
    for (const column of ['newest', 'time', 'kid', 'sig', 'retention_ms']) db.exec(`ALTER TABLE audit_checkpoint DROP COLUMN ${column}`)
    db.close()
    openSqlite(path).close()
    const again = new DatabaseSync(path)
    expect(indexes(again)).toEqual(['audit_console', 'audit_refused', 'audit_subject', 'audit_time'])
    again.close()
  })

  it('finds refusals through the partial index, newest first, and allowed requests by the time index', async () => {
    const path = tempDb()
    const sink = createSqliteSink(path, { durable: false })
    await sink.open()
    let prev = GENESIS_HASH
    const rows = Array.from({ length: 30 }, (_, i) => {
      const record = chain({
        id: `id-${i}`, time: new Date(Date.UTC(2026, 11, 1, 0, 0, i)).toISOString(), request_id: `r${i}`, method: 'GET', path: '/x', status: i % 10 === 3 ? 403 : 200,
        decision: i % 10 === 3 ? 'deny' : 'allow', roles: [], source_ip: '::1', duration_ms: 1, bytes_in: 0, bytes_out: 0, route: `route-${i % 2}`,
      }, prev)
      prev = record.hash
      return { chain: 'c', seq: i + 1, record }
    })
    await sink.write(rows)
    await sink.close()
    const denied = await searchAudit({ type: 'sqlite', path }, { limit: 10, decision: 'deny' })
    expect(denied.map((r) => r.request_id)).toEqual(['r23', 'r13', 'r3'])
    expect((await searchAudit({ type: 'sqlite', path }, { limit: 2, decision: 'allow', route: 'route-1' })).map((r) => r.request_id)).toEqual(['r29', 'r27'])
    const db = new DatabaseSync(path, { readOnly: true, timeout: 5000 })
    const plan = (db.prepare(`EXPLAIN QUERY PLAN SELECT * FROM audit_records WHERE "decision" = ? AND decision <> 'allow' ORDER BY time_ms DESC, seq DESC LIMIT 10`).all('deny') as Array<{ detail: string }>).map((r) => r.detail).join(' ')
    db.close()
    expect(plan).toContain('audit_refused')
  })
})
