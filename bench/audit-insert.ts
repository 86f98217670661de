// The audit worker's insert, two ways, in process and in alternating rounds (issue 15): today's
// (the worker scans the canonical line for its columns, canonical-scan.ts, and binds ~36 values a
// row into 25-row statements, then the console's roll-ups) against SQLite reading the columns out
// of the line itself (`json_extract` over 4 bound values a row: chain, seq, line, hash).
//
//   node bench/audit-insert.ts [--rounds 4]
//
// Prints process CPU per record (link + insert), each round. The second shape skips the roll-ups,
// so it is flattered; it still lost (bench/README "Profiling").
import { randomUUID } from 'node:crypto'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import type { DatabaseSync, StatementSync } from 'node:sqlite'
import { parseArgs } from 'node:util'
import { columnOf, FIELD_SPECS } from '../src/audit/fields.ts'
import { GENESIS_HASH, link, recordLine } from '../src/audit/record.ts'
import { LinkedRow } from '../src/audit/sinks/sink.ts'
import { createSqliteSink, openSqlite } from '../src/audit/sinks/sqlite.ts'
import { finishedRequest } from './audit.ts'

const { values } = parseArgs({ options: { rounds: { type: 'string', default: '4' } } })
const BATCH = 1_600
const TOTAL = 64_000
const ROWS_PER_INSERT = 25
type Shape = 'scan-and-bind' | 'json_extract'

/** One row's values from its line in SQLite: `time_ms` as the sink computes it (Date.parse), the rest by name. */
function extractingInsert(db: DatabaseSync): StatementSync {
  const columns = ['chain', 'seq', 'time_ms', ...FIELD_SPECS.map(columnOf)]
  const row = (r: number): string => {
    const [chain, seq, line, hash] = [1, 2, 3, 4].map((k) => `?${r * 4 + k}`)
    const time = `CAST(round((julianday(json_extract(${line}, '$.time')) - 2440587.5) * 86400000) AS INTEGER)`
    const fields = FIELD_SPECS.map((f) => (f.name === 'hash' ? hash : `json_extract(${line}, '$.${f.name}')`))
    return `(${chain}, ${seq}, ${time}, ${fields.join(', ')})`
  }
  const rows = Array.from({ length: ROWS_PER_INSERT }, (_, r) => row(r)).join(', ')
  return db.prepare(`INSERT OR IGNORE INTO audit_records (${columns.join(', ')}) VALUES ${rows}`)
}

async function round(shape: Shape): Promise<number> {
  const dir = mkdtempSync(join(tmpdir(), 'bouncer-audit-insert-'))
  const path = join(dir, 'audit.db')
  const sink = createSqliteSink(path, { durable: false })
  await sink.open()
  const db = openSqlite(path, { durable: false })
  const chain = randomUUID()
  db.prepare('INSERT INTO audit_chains (chain) VALUES (?)').run(chain)
  const chainNo = (db.prepare('SELECT no FROM audit_chains WHERE chain = ?').get(chain) as { no: number }).no
  const insert = extractingInsert(db)
  const batches = Array.from({ length: TOTAL / BATCH }, (_, b) => Array.from({ length: BATCH }, (_, i) => recordLine(finishedRequest(b * BATCH + i), 'bench:1')))
  let head = { seq: 0, hash: GENESIS_HASH }
  const started = process.cpuUsage()
  for (const lines of batches) {
    const rows = lines.map((line) => {
      const linked = link(line, head.hash)
      head = { seq: head.seq + 1, hash: linked.hash }
      return new LinkedRow(chain, head.seq, linked)
    })
    if (shape === 'scan-and-bind') {
      await sink.write(rows)
      continue
    }
    db.exec('BEGIN IMMEDIATE')
    for (let i = 0; i < rows.length; i += ROWS_PER_INSERT) {
      insert.run(...rows.slice(i, i + ROWS_PER_INSERT).flatMap((row) => [chainNo, row.seq, row.linked.canonical, row.linked.hash]))
    }
    db.exec('COMMIT')
  }
  const cpu = process.cpuUsage(started)
  const stored = (db.prepare('SELECT count(*) AS n FROM audit_records').get() as { n: number }).n
  if (stored !== TOTAL) throw new Error(`${shape}: ${stored} rows stored of ${TOTAL}`)
  db.close()
  await sink.close()
  rmSync(dir, { recursive: true, force: true })
  return (cpu.user + cpu.system) / TOTAL
}

const results: Record<Shape, string[]> = { 'scan-and-bind': [], json_extract: [] }
for (let r = 0; r < Number(values.rounds); r++) {
  for (const shape of Object.keys(results) as Shape[]) results[shape].push((await round(shape)).toFixed(1))
}
for (const [shape, micros] of Object.entries(results)) console.log(`${shape}: CPU µs per record, round by round: ${micros.join(' ')}`)
