// The audit worker's insert, three ways, in process and in alternating rounds (issue 15): today's
// (the worker scans the canonical line for its columns, canonical-scan.ts, and binds ~36 values a
// row into 25-row statements, then the console's roll-ups) against SQLite reading the columns out
// of the line itself (`json_extract` over 4 bound values a row: chain, seq, line, hash), and a
// sketch of the layout that is not a row per record: each batch one row of its lines, with the
// batch's time range and its distinct subjects and routes in side tables for search to find the
// batches to scan (the worker still scans each line for those values, as it would for the
// roll-ups). `batch-bytes` goes further: the line arrives with a 64-character prev_hash
// placeholder, and the worker writes each hash into the batch's own UTF-8 bytes, hashes the line's
// bytes in place and stores the batch as one BLOB: no string per record, no scan (search's few
// values would come from the request thread beside the line, not measured here). The sketches are
// what such a design's floor would be, not sinks: nothing reads them. `link-only` is today's chain
// alone (splice + SHA-256), what every string-based layout pays. `narrow-row` keeps a row per record
// but stores only what an index or a roll-up reads (7 columns) and the canonical line for the rest
// (which readers would reach as virtual generated columns): it lost to today's shape, as the line's
// key names and quotes make the row larger than SQLite's record of typed columns.
//
//   node bench/audit-insert.ts [--rounds 4] [--shapes scan-and-bind,link-only,narrow-row]
//
// Prints process CPU per record (link + insert), each round. The second shape skips the roll-ups,
// so it is flattered; it still lost (bench/README "Profiling").
import { hash, randomUUID } from 'node:crypto'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import type { DatabaseSync, StatementSync } from 'node:sqlite'
import { parseArgs } from 'node:util'
import { columnValues } from '../src/audit/canonical-scan.ts'
import { columnOf, FIELD_SPECS } from '../src/audit/fields.ts'
import { GENESIS_HASH, link, recordLine } from '../src/audit/record.ts'
import { LinkedRow } from '../src/audit/sinks/sink.ts'
import { createSqliteSink, openSqlite } from '../src/audit/sinks/sqlite.ts'
import { finishedRequest } from './audit.ts'

const { values } = parseArgs({ options: { rounds: { type: 'string', default: '4' }, shapes: { type: 'string' } } })
const BATCH = 1_600
const TOTAL = 64_000
const ROWS_PER_INSERT = 25
type Shape = 'scan-and-bind' | 'json_extract' | 'batch-row' | 'batch-bytes' | 'link-only' | 'narrow-row'

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

const column = (name: string) => FIELD_SPECS.findIndex((field) => field.name === name)
const [TIME, SUBJECT, ROUTE] = [column('time'), column('subject'), column('route')]

/** A row per record holding only what an index or a roll-up reads, and the canonical line for the rest. */
const NARROW = ['decision', 'code', 'statement', 'route', 'subject', 'duration_ms', 'upstream_ms']
const NARROW_COLUMNS = NARROW.map(column)
function narrowInsert(db: DatabaseSync): StatementSync {
  db.exec(`
    CREATE TABLE sketch_narrow (chain INTEGER NOT NULL, seq INTEGER NOT NULL, time_ms INTEGER NOT NULL, decision TEXT NOT NULL, code TEXT, statement TEXT, route TEXT, subject TEXT, duration_ms REAL NOT NULL, upstream_ms REAL, line TEXT NOT NULL, hash TEXT NOT NULL, UNIQUE (chain, seq));
    CREATE INDEX sketch_narrow_time ON sketch_narrow (time_ms);
    CREATE INDEX sketch_narrow_subject ON sketch_narrow (subject, time_ms);
    CREATE INDEX sketch_narrow_refused ON sketch_narrow (time_ms) WHERE decision <> 'allow';
    CREATE INDEX sketch_narrow_console ON sketch_narrow (time_ms, decision, code, route, subject, duration_ms, upstream_ms);
  `)
  const row = (r: number) => `(${Array.from({ length: 12 }, (_, k) => `?${r * 12 + k + 1}`).join(', ')})`
  return db.prepare(`INSERT OR IGNORE INTO sketch_narrow VALUES ${Array.from({ length: ROWS_PER_INSERT }, (_, r) => row(r)).join(', ')}`)
}

function writeNarrow(db: DatabaseSync, insert: StatementSync, chainNo: number, rows: LinkedRow[]): void {
  db.exec('BEGIN IMMEDIATE')
  const params = new Array<unknown>(ROWS_PER_INSERT * 12)
  for (let i = 0; i < rows.length; i += ROWS_PER_INSERT) {
    let p = 0
    for (let r = i; r < i + ROWS_PER_INSERT; r++) {
      const row = rows[r] as LinkedRow
      const values = columnValues(row.linked.canonical, row.linked.hash)
      params[p++] = chainNo
      params[p++] = row.seq
      params[p++] = Date.parse(values[TIME] as string)
      for (const c of NARROW_COLUMNS) params[p++] = values[c]
      params[p++] = row.linked.canonical
      params[p++] = row.linked.hash
    }
    insert.run(...(params as (string | number | null)[]))
  }
  db.exec('COMMIT')
}

/** The sketch's tables: a batch per row, and what search would look batches up by. */
function batchTables(db: DatabaseSync): { batch: StatementSync; subject: StatementSync; route: StatementSync } {
  db.exec(`
    CREATE TABLE sketch_batches (chain INTEGER NOT NULL, first_seq INTEGER NOT NULL, last_seq INTEGER NOT NULL, time_min INTEGER NOT NULL, time_max INTEGER NOT NULL, lines TEXT NOT NULL, hashes TEXT NOT NULL, UNIQUE (chain, first_seq));
    CREATE INDEX sketch_time ON sketch_batches (time_max);
    CREATE TABLE sketch_subjects (batch INTEGER NOT NULL, subject TEXT, PRIMARY KEY (subject, batch)) WITHOUT ROWID;
    CREATE TABLE sketch_routes (batch INTEGER NOT NULL, route TEXT, PRIMARY KEY (route, batch)) WITHOUT ROWID;
  `)
  return {
    batch: db.prepare('INSERT INTO sketch_batches VALUES (?, ?, ?, ?, ?, ?, ?)'),
    subject: db.prepare('INSERT INTO sketch_subjects VALUES (?, ?)'),
    route: db.prepare('INSERT INTO sketch_routes VALUES (?, ?)'),
  }
}

function writeBatch(db: DatabaseSync, tables: ReturnType<typeof batchTables>, chainNo: number, rows: LinkedRow[]): void {
  const subjects = new Set<unknown>()
  const routes = new Set<unknown>()
  let timeMin = Infinity
  let timeMax = -Infinity
  for (const row of rows) {
    const values = columnValues(row.linked.canonical, row.linked.hash)
    subjects.add(values[SUBJECT])
    routes.add(values[ROUTE])
    const time = Date.parse(values[TIME] as string)
    if (time < timeMin) timeMin = time
    if (time > timeMax) timeMax = time
  }
  db.exec('BEGIN IMMEDIATE')
  const first = rows[0] as LinkedRow
  const { lastInsertRowid } = tables.batch.run(chainNo, first.seq, first.seq + rows.length - 1, timeMin, timeMax, rows.map((row) => row.linked.canonical).join('\n'), rows.map((row) => row.linked.hash).join(''))
  for (const subject of subjects) tables.subject.run(lastInsertRowid, subject as string | null)
  for (const route of routes) tables.route.run(lastInsertRowid, route as string | null)
  db.exec('COMMIT')
}

const PREV_HASH_KEY = Buffer.from('"prev_hash":"')
/** A batch as the worker would receive it: UTF-8 lines, each with a 64-character prev_hash placeholder. */
function placeholderBatch(lines: string[]): Buffer {
  return Buffer.from(lines.map((line) => line.replace('"prev_hash":"\\u0001"', `"prev_hash":"${'0'.repeat(64)}"`)).join('\n'))
}

/** The chain written into the batch's bytes, line by line; then the batch as one row. Returns the head. */
function writeBatchBytes(db: DatabaseSync, insert: StatementSync, chainNo: number, firstSeq: number, batch: Buffer, head: string): string {
  let start = 0
  let seq = firstSeq
  while (start < batch.length) {
    let end = batch.indexOf(10, start)
    if (end === -1) end = batch.length
    const at = batch.indexOf(PREV_HASH_KEY, start)
    if (at === -1 || at > end) throw new Error('a line without its prev_hash placeholder')
    batch.write(head, at + PREV_HASH_KEY.length, 64, 'latin1')
    head = hash('sha256', batch.subarray(start, end), 'hex')
    start = end + 1
    seq++
  }
  db.exec('BEGIN IMMEDIATE')
  insert.run(chainNo, firstSeq, seq - 1, batch)
  db.exec('COMMIT')
  return head
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
  const tables = batchTables(db)
  db.exec('CREATE TABLE sketch_blobs (chain INTEGER NOT NULL, first_seq INTEGER NOT NULL, last_seq INTEGER NOT NULL, lines BLOB NOT NULL, UNIQUE (chain, first_seq))')
  const insertBlob = db.prepare('INSERT INTO sketch_blobs VALUES (?, ?, ?, ?)')
  const insertNarrow = narrowInsert(db)
  const batches = Array.from({ length: TOTAL / BATCH }, (_, b) => Array.from({ length: BATCH }, (_, i) => recordLine(finishedRequest(b * BATCH + i), 'bench:1')))
  const byteBatches = shape === 'batch-bytes' ? batches.map(placeholderBatch) : []
  if (shape === 'batch-bytes') {
    // The same chain as today's: the first line's hash in place equals link()'s.
    const first = placeholderBatch([batches[0]?.[0] as string])
    const inPlace = writeBatchBytes(db, insertBlob, chainNo, 1_000_000, first, GENESIS_HASH)
    if (inPlace !== link(batches[0]?.[0] as string, GENESIS_HASH).hash) throw new Error('batch-bytes: not the chain link() makes')
    db.exec('DELETE FROM sketch_blobs')
  }
  let head = { seq: 0, hash: GENESIS_HASH }
  const started = process.cpuUsage()
  for (const batch of byteBatches) head = { seq: head.seq + BATCH, hash: writeBatchBytes(db, insertBlob, chainNo, head.seq + 1, batch, head.hash) }
  for (const lines of shape === 'batch-bytes' ? [] : batches) {
    const rows = lines.map((line) => {
      const linked = link(line, head.hash)
      head = { seq: head.seq + 1, hash: linked.hash }
      return new LinkedRow(chain, head.seq, linked)
    })
    if (shape === 'scan-and-bind') {
      await sink.write(rows)
      continue
    }
    if (shape === 'batch-row') {
      writeBatch(db, tables, chainNo, rows)
      continue
    }
    if (shape === 'link-only') continue
    if (shape === 'narrow-row') {
      writeNarrow(db, insertNarrow, chainNo, rows)
      continue
    }
    db.exec('BEGIN IMMEDIATE')
    for (let i = 0; i < rows.length; i += ROWS_PER_INSERT) {
      insert.run(...rows.slice(i, i + ROWS_PER_INSERT).flatMap((row) => [chainNo, row.seq, row.linked.canonical, row.linked.hash]))
    }
    db.exec('COMMIT')
  }
  const cpu = process.cpuUsage(started)
  const stored = shape === 'link-only'
    ? TOTAL
    : shape === 'batch-row' || shape === 'batch-bytes'
    ? (db.prepare(`SELECT sum(last_seq - first_seq + 1) AS n FROM ${shape === 'batch-row' ? 'sketch_batches' : 'sketch_blobs'}`).get() as { n: number }).n
    : (db.prepare(`SELECT count(*) AS n FROM ${shape === 'narrow-row' ? 'sketch_narrow' : 'audit_records'}`).get() as { n: number }).n
  if (stored !== TOTAL) throw new Error(`${shape}: ${stored} rows stored of ${TOTAL}`)
  db.close()
  await sink.close()
  rmSync(dir, { recursive: true, force: true })
  return (cpu.user + cpu.system) / TOTAL
}

const all: Record<Shape, string[]> = { 'scan-and-bind': [], json_extract: [], 'batch-row': [], 'batch-bytes': [], 'link-only': [], 'narrow-row': [] }
const chosen = values.shapes?.split(',')
const results = Object.fromEntries(Object.entries(all).filter(([shape]) => chosen === undefined || chosen.includes(shape))) as Record<Shape, string[]>
for (let r = 0; r < Number(values.rounds); r++) {
  for (const shape of Object.keys(results) as Shape[]) results[shape].push((await round(shape)).toFixed(1))
}
for (const [shape, micros] of Object.entries(results)) console.log(`${shape}: CPU µs per record, round by round: ${micros.join(' ')}`)
