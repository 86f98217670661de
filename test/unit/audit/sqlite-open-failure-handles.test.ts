// A SQLite audit log that cannot be opened (a file that is not a database; a full disk at the
// schema's step) is tried again every second by the sink runner: a failed open closed nothing, so
// the process kept one more open file a second until it ran out of them. Counted in /proc/self/fd
// (Linux) over failed opens and reopens; and a reader's refusal of a log with no records yet, which
// closed its handle before and must still (the close moved).
import { mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { DatabaseSync } from 'node:sqlite'
import { afterAll, expect, it } from 'vitest'
import { createSqliteSink, NoAuditLog, openSqlite } from '../../../src/audit/sinks/sqlite.ts'

const dir = mkdtempSync(join(tmpdir(), 'bouncer-audit-open-fail-'))
afterAll(() => rmSync(dir, { recursive: true, force: true }))

const openFiles = () => readdirSync('/proc/self/fd').length

it('a log that is not a database: every failed open gives its file back', async () => {
  const path = join(dir, 'not-a-log.db')
  writeFileSync(path, 'this is not a SQLite database, but it is long enough to be read as one. '.repeat(200))
  const sink = createSqliteSink(path, { durable: false })
  await expect(sink.open()).rejects.toThrow(/file is not a database/)
  const before = openFiles()
  for (let i = 0; i < 50; i++) await expect(sink.open()).rejects.toThrow(/file is not a database/)
  expect(openFiles() - before).toBeLessThan(5)
})

it('a reader of a log with no records yet is told so, and keeps no file open', () => {
  const path = join(dir, 'empty.db')
  new DatabaseSync(path).close()
  expect(() => openSqlite(path, { readOnly: true })).toThrow(NoAuditLog)
  const before = openFiles()
  for (let i = 0; i < 50; i++) expect(() => openSqlite(path, { readOnly: true })).toThrow(/has no records yet/)
  expect(openFiles() - before).toBeLessThan(5)
})

it('a sink opened again (the runner reopens it when reading a chain\'s head failed after the open) keeps one handle', async () => {
  const path = join(dir, 'audit.db')
  const sink = createSqliteSink(path, { durable: false })
  await sink.open()
  const before = openFiles()
  for (let i = 0; i < 20; i++) await sink.open()
  expect(openFiles() - before).toBeLessThan(3)
  await sink.close()
})
