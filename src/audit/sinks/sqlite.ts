// The embedded audit sink: node:sqlite in WAL mode, every record field a column (fields.ts), plus the chain (a
// small number, mapped to the chain's id in audit_chains) and its `seq`, unique together so a chain
// started afresh never collides with an older one and a replay writes each record once. `time_ms`
// lets the time indexes compare integers. Measured (bench/audit.ts): integer chain keys and 25-row
// INSERT statements cut an insert from ~12 µs to ~6 µs; schema 3 keeps three indexes (time, subject,
// and refusals only: issue 15).
import { existsSync, statSync } from 'node:fs'
import { dirname } from 'node:path'
import { DatabaseSync, type StatementSync } from 'node:sqlite'
import { addMissingColumns, inTransaction, makeDirectories, openReadOnly, switchToWal } from '../../collections/index.ts'
import { ADDED_FIELDS, columnDefinition, columnOf, FIELD_SPECS, type FieldSpec } from '../fields.ts'
import { timeMsOf, type AuditRecord } from '../record.ts'
import { checkedHead } from '../chain-head.ts'
import type { Checkpoint } from '../checkpoint.ts'
import { BatchRollup, prepareRollupUpserts, ROLLUP_BINS_PER_OCTAVE, type RollupStatements } from './sqlite-rollup.ts'
import { rowColumns, sinkName, type AuditSink, type ChainHead, type CutSigner, type SinkHead, type StoredRow } from './sink.ts'

const SCHEMA_VERSION = 5
const ROWS_PER_INSERT = 25

// The record's columns are the field table's (fields.ts): a new log gets them all here, a log made
// before a field was added gets its column from addMissingColumns.
const MIGRATIONS: Record<number, string> = {
  1: `
    CREATE TABLE audit_chains (no INTEGER PRIMARY KEY, chain TEXT NOT NULL UNIQUE);
    CREATE TABLE audit_records (
      chain INTEGER NOT NULL,
      seq INTEGER NOT NULL,
      time_ms INTEGER NOT NULL,
      ${FIELD_SPECS.map((field) => columnDefinition(field, 'sqlite')).join(', ')},
      UNIQUE (chain, seq)
    );
    CREATE INDEX audit_time ON audit_records (time_ms);
    CREATE INDEX audit_subject ON audit_records (subject, time_ms);
    CREATE INDEX audit_route ON audit_records (route, time_ms);
    CREATE INDEX audit_decision ON audit_records (decision, time_ms);
    CREATE TABLE audit_checkpoint (chain INTEGER PRIMARY KEY, seq INTEGER NOT NULL, hash TEXT NOT NULL);
  `,
  // audit_checkpoint is where retention left a chain; this one is its signed head (checkpoint.ts).
  2: `
    CREATE TABLE audit_head_checkpoints (
      chain INTEGER PRIMARY KEY, count INTEGER NOT NULL, id TEXT NOT NULL, hash TEXT NOT NULL, time TEXT NOT NULL, kid TEXT NOT NULL, sig TEXT NOT NULL
    );
  `,
  // Issue 15: every index is a B-tree insert per record. The route and decision indexes cost ~2 µs
  // of the ~9 µs a record's insert took (bench/README.md, "Profiling"), and served searches the time
  // index serves well enough (newest first, filtered). Refusals, the rare records one looks for
  // among millions of allowed requests, keep a partial index: allowed requests never enter it.
  3: `
    DROP INDEX IF EXISTS audit_route;
    DROP INDEX IF EXISTS audit_decision;
    CREATE INDEX audit_refused ON audit_records (time_ms) WHERE decision <> 'allow';
  `,
  // Retention's cut, signed (checkpoint.ts): a row left before this stays, unsigned, until the
  // chain's next cut replaces it (verify notes it meanwhile).
  4: `
    ALTER TABLE audit_checkpoint ADD COLUMN newest TEXT;
    ALTER TABLE audit_checkpoint ADD COLUMN time TEXT;
    ALTER TABLE audit_checkpoint ADD COLUMN kid TEXT;
    ALTER TABLE audit_checkpoint ADD COLUMN sig TEXT;
  `,
  // The retention the cut was made under, signed with it: verify judges an early cut by it.
  5: `
    ALTER TABLE audit_checkpoint ADD COLUMN retention_ms INTEGER;
  `,
}

const INSERT_COLUMNS = ['chain', 'seq', 'time_ms', ...FIELD_SPECS.map(columnOf)]

export class NoAuditLog extends Error {}

/**
 * `asItStands` (read-only): a reader who may read the log but not write its folder (an auditor) reads
 * the file as it stands when SQLite cannot make or open its -wal and -shm files, and is told why
 * (openReadOnly). Without it such a reader fails, as the gateway's own reads do.
 */
export function openSqlite(path: string, options: { readOnly?: boolean; durable?: boolean; asItStands?: (why: string) => void } = {}): DatabaseSync {
  if (options.readOnly && !existsSync(path)) throw new NoAuditLog(`there is no audit log at ${path} yet`)
  if (!options.readOnly) makeDirectories(dirname(path))
  const db = options.readOnly && options.asItStands ? openReadOnly(path, options.asItStands) : new DatabaseSync(path, { readOnly: options.readOnly === true })
  try {
    prepareLog(db, path, options)
    return db
  } catch (err) {
    // The sink tries its open again every second: a log that fails here (not a database, a full
    // disk) kept one more open file each time, until the process ran out of them.
    if (db.isOpen) db.close()
    throw err
  }
}

function prepareLog(db: DatabaseSync, path: string, options: { readOnly?: boolean; durable?: boolean }): void {
  db.exec('PRAGMA busy_timeout = 5000')
  if (options.readOnly && schemaVersion(db) === 0) {
    // The gateway's audit worker creates the file, then its tables: a reader can come in between.
    throw new NoAuditLog(`the audit log at ${path} has no records yet`)
  }
  if (!options.readOnly) {
    // A new log's pages are 16 KB rather than SQLite's 4 KB: with ~575 bytes a record (its row and
    // index entries), a page holds ~28 records instead of ~7, so the B-trees split and the WAL
    // takes page images a quarter as often. The worker's insert, in process: 12.45 -> 11.6 µs a
    // record with 50 principals, 14.45 -> 12.0 with 5,000 (bench/README.md "Profiling"). Only an
    // empty file takes it: an existing log keeps its page size (WAL mode cannot change it).
    db.exec('PRAGMA page_size = 16384')
    switchToWal(db)
    // NORMAL survives a killed process (the WAL is written before COMMIT returns); FULL also a power cut.
    db.exec(`PRAGMA synchronous = ${options.durable ? 'FULL' : 'NORMAL'}`)
    migrate(db)
    // A log written before a field was added gets its column in place (its records read as null).
    addMissingColumns(db, 'audit_records', ADDED_FIELDS.map((field) => ({ name: field.name, definition: columnDefinition(field, 'sqlite') })))
    addConsoleIndex(db)
  }
}

function schemaVersion(db: DatabaseSync): number {
  return (db.prepare('PRAGMA user_version').get() as { user_version: number }).user_version
}

/**
 * Each step under the write lock, the version read again once it is held: another opener of the
 * file (the gateway's audit worker, a `bouncer keys` command recording its change) may have made
 * the step meanwhile. Read before a plain BEGIN, two openers of a new log both made its tables, and
 * the second failed ("table audit_chains already exists"), refusing the command's change.
 */
function migrate(db: DatabaseSync): void {
  while (schemaVersion(db) < SCHEMA_VERSION) {
    inTransaction(db, () => {
      const next = schemaVersion(db) + 1
      if (next <= SCHEMA_VERSION) {
        db.exec(MIGRATIONS[next] as string)
        db.exec(`PRAGMA user_version = ${next}`)
      }
    })
  }
}

/**
 * The console's aggregates (aggregate.ts) scan a time range reading these columns only: with them
 * in the index the scan never touches the table (bench/console.ts). After addMissingColumns, as it
 * names an added field; building it on an existing log takes a few seconds per million records, once.
 */
export const CONSOLE_INDEX_COLUMNS = ['decision', 'code', 'route', 'subject', 'duration_ms', 'upstream_ms']

function addConsoleIndex(db: DatabaseSync): void {
  db.exec(`CREATE INDEX IF NOT EXISTS audit_console ON audit_records (time_ms, ${CONSOLE_INDEX_COLUMNS.join(', ')})`)
  addRollups(db)
}

/**
 * Per-minute counts for the console's long ranges (a day of 1,000,000 records is ~100,000 rollup
 * rows to sum instead of a million to group): outcomes by route, principals, and latency histograms
 * (log-scale bins of 1/8 octave, ±4.5%) of forwarded requests, in all and at the upstream. The sink
 * keeps them per batch, in the batch's transaction: counted from the values it bound when every row
 * was new (sqlite-rollup.ts), else one grouped upsert per table over the rows the batch actually
 * inserted, so a replayed record (INSERT OR IGNORE) is never counted twice. A per-record trigger
 * did the same at ~7 µs a record (issue 15; bench/README.md, "Profiling").
 * Made once, from the records already there; a log that has the old trigger loses it (its rollups
 * are already complete). '' stands for null in keys. The tables' existence says they are complete.
 */
export { ROLLUP_BINS_PER_OCTAVE }
/** The rollups' latency bin of a column's value, in SQL: the roll-ups' and the console's edge minutes' one definition. */
export const latencyBinSql = (column: string) => `CAST(round(log2(max(${column}, 0.01)) * ${ROLLUP_BINS_PER_OCTAVE}) AS INTEGER)`

/** The rollups' rows for the records matched by `where` (the whole log, or a batch's rowid range). */
function rollupInserts(where: string, upsert: string): string[] {
  const latency = (kind: number, column: string) =>
    `INSERT INTO audit_rollup_latency SELECT time_ms / 60000, ${kind}, ${latencyBinSql(column)}, COUNT(*) FROM audit_records
      WHERE ${where} AND upstream_ms IS NOT NULL GROUP BY 1, 3 ${upsert}`
  return [
    `INSERT INTO audit_rollup_outcomes SELECT time_ms / 60000, decision, coalesce(code, ''), coalesce(statement, ''), coalesce(route, ''), COUNT(*)
      FROM audit_records WHERE ${where} GROUP BY 1, 2, 3, 4, 5 ${upsert}`,
    `INSERT INTO audit_rollup_principals SELECT time_ms / 60000, coalesce(subject, ''), decision, COUNT(*) FROM audit_records WHERE ${where} GROUP BY 1, 2, 3 ${upsert}`,
    latency(0, 'duration_ms'),
    latency(1, 'upstream_ms'),
  ]
}

const hasRollups = (db: DatabaseSync) => db.prepare("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'audit_rollup_outcomes'").get() !== undefined
const ROLLUP_TABLES = ['audit_rollup_outcomes', 'audit_rollup_principals', 'audit_rollup_latency']

/**
 * How far the rollups have counted: the log's largest rowid when a batch's counts were written. A
 * version without rollups (or one that kept them but not this) may have written records since: the
 * minutes those records fall in are counted again from the records on open, which is exact whoever
 * wrote them (an older version's trigger or batches, or none). Before this, a downgrade and back
 * left the console's long ranges short by what the older version wrote.
 */
const COVERED_UPDATE = 'UPDATE audit_rollup_covered SET last_rowid = (SELECT coalesce(max(rowid), 0) FROM audit_records)'

function addRollups(db: DatabaseSync): void {
  inTransaction(db, () => {
    // Under the write lock: another opener (a worker of the same gateway) may be doing it too.
    const last = (db.prepare('SELECT coalesce(max(rowid), 0) AS last FROM audit_records').get() as { last: number }).last
    if (!hasRollups(db)) {
      db.exec(`
        CREATE TABLE audit_rollup_outcomes (
          minute INTEGER NOT NULL, decision TEXT NOT NULL, code TEXT NOT NULL, statement TEXT NOT NULL, route TEXT NOT NULL, n INTEGER NOT NULL,
          PRIMARY KEY (minute, decision, code, statement, route)) WITHOUT ROWID;
        CREATE TABLE audit_rollup_principals (
          minute INTEGER NOT NULL, subject TEXT NOT NULL, decision TEXT NOT NULL, n INTEGER NOT NULL, PRIMARY KEY (minute, subject, decision)) WITHOUT ROWID;
        CREATE TABLE audit_rollup_latency (
          minute INTEGER NOT NULL, kind INTEGER NOT NULL, bin INTEGER NOT NULL, n INTEGER NOT NULL, PRIMARY KEY (minute, kind, bin)) WITHOUT ROWID;
      `)
      for (const insert of rollupInserts('true', '')) db.exec(insert)
    }
    // A log kept by the old per-record trigger: its counts are whole, and batches count from now on.
    db.exec('DROP TRIGGER IF EXISTS audit_rollup')
    const hasCovered = db.prepare("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'audit_rollup_covered'").get() !== undefined
    if (!hasCovered) {
      // Rollups made just now, or kept by a version before this table: whole up to here.
      db.exec('CREATE TABLE audit_rollup_covered (last_rowid INTEGER NOT NULL)')
      db.prepare('INSERT INTO audit_rollup_covered VALUES (?)').run(last)
    } else {
      const covered = (db.prepare('SELECT last_rowid FROM audit_rollup_covered').get() as { last_rowid: number }).last_rowid
      const gap = db.prepare('SELECT min(time_ms) AS first, max(time_ms) AS latest FROM audit_records WHERE rowid > ?').get(covered) as { first: number | null; latest: number | null }
      if (gap.first !== null && gap.latest !== null) {
        const from = Math.floor(gap.first / 60_000)
        const to = Math.floor(gap.latest / 60_000)
        for (const table of ROLLUP_TABLES) db.prepare(`DELETE FROM ${table} WHERE minute BETWEEN ? AND ?`).run(from, to)
        for (const insert of rollupInserts(`time_ms >= ${from * 60_000} AND time_ms < ${(to + 1) * 60_000}`, '')) db.exec(insert)
      }
      db.exec(COVERED_UPDATE)
    }
  })
}

/** A stored value back into a record's value: roles is kept as JSON text; a column an older log lacks reads as null. */
function fromColumn(field: FieldSpec, value: unknown): unknown {
  if (field.kind === 'roles') return typeof value === 'string' ? (JSON.parse(value) as string[]) : []
  return value ?? null
}

/** A stored row back into a record. */
export function recordFromRow(row: Record<string, unknown>): AuditRecord {
  const record: Record<string, unknown> = {}
  for (const field of FIELD_SPECS) record[field.name] = fromColumn(field, row[field.name])
  return record as AuditRecord
}

const TIME_COLUMN = FIELD_SPECS.findIndex((field) => field.name === 'time')

/** A row's values into `out` from `at`, and into the batch's rollup; returns where the next row's go. */
function bind(out: unknown[], at: number, chainNo: number, row: StoredRow, rollup: BatchRollup): number {
  const columns = rowColumns(row)
  const timeMs = timeMsOf(columns[TIME_COLUMN] as string)
  out[at++] = chainNo
  out[at++] = row.seq
  out[at++] = timeMs
  for (let i = 0; i < columns.length; i++) out[at++] = columns[i]
  rollup.add(columns, timeMs)
  return at
}

export function createSqliteSink(path: string, options: { durable: boolean }): AuditSink {
  let db: DatabaseSync | undefined
  const chainNos = new Map<string, number>()
  const inserts = new Map<number, StatementSync>()
  let maxRowid: StatementSync | undefined
  let rollUps: StatementSync[] | undefined
  let rollupUpserts: RollupStatements | undefined
  let coveredUpdate: StatementSync | undefined
  const rollup = new BatchRollup()
  /** The file opened: a write goes to it only while the path still names it. */
  let file: { dev: number; ino: number } | undefined

  function openFile(): void {
    // Opened again by the runner when a first open had worked but reading a chain's head had not
    // (the log locked at start): the first handle was left open.
    if (db?.isOpen) db.close()
    db = undefined
    const opened = openSqlite(path, { durable: options.durable })
    try {
      const { dev, ino } = statSync(path)
      file = { dev, ino }
    } catch (err) {
      opened.close() // the file went between the open and the look: tried again at the next ping
      throw err
    }
    db = opened
    chainNos.clear()
    inserts.clear()
    maxRowid = undefined
    rollUps = undefined
    rollupUpserts = undefined
    coveredUpdate = undefined
  }

  /**
   * A log deleted or replaced under the gateway (an rm, a restore of a copy) stays open through its
   * handle: every record went on into a file nobody could read, lost at exit, with nothing said (a
   * probe). The write fails instead, its rows spill, and the next ping opens the file at the path.
   */
  function stillThere(database: DatabaseSync): void {
    const now = statSync(path, { throwIfNoEntry: false })
    if (now !== undefined && now.dev === file?.dev && now.ino === file.ino) return
    database.close()
    db = undefined
    throw new Error(`the SQLite audit log ${path} was ${now === undefined ? 'deleted' : 'replaced by another file'} since the gateway opened it`)
  }

  /** The small number that stands for a chain in audit_records (registered on first use). */
  function chainNoOf(chain: string): number {
    let no = chainNos.get(chain)
    if (no === undefined) {
      const database = db as DatabaseSync
      database.prepare('INSERT OR IGNORE INTO audit_chains (chain) VALUES (?)').run(chain)
      no = (database.prepare('SELECT no FROM audit_chains WHERE chain = ?').get(chain) as { no: number }).no
      chainNos.set(chain, no)
    }
    return no
  }

  function insertOf(rows: number): StatementSync {
    let statement = inserts.get(rows)
    if (!statement) {
      const one = `(${INSERT_COLUMNS.map(() => '?').join(', ')})`
      statement = (db as DatabaseSync).prepare(`INSERT OR IGNORE INTO audit_records (${INSERT_COLUMNS.join(', ')}) VALUES ${new Array(rows).fill(one).join(', ')}`)
      inserts.set(rows, statement)
    }
    return statement
  }

  function keepCheckpoint(database: DatabaseSync, c: Checkpoint): void {
    database.prepare(`INSERT INTO audit_head_checkpoints (chain, count, id, hash, time, kid, sig) VALUES (?, ?, ?, ?, ?, ?, ?)
      ON CONFLICT (chain) DO UPDATE SET count = excluded.count, id = excluded.id, hash = excluded.hash, time = excluded.time, kid = excluded.kid, sig = excluded.sig
      WHERE excluded.count >= audit_head_checkpoints.count`).run(chainNoOf(c.chain), c.count, c.id, c.hash, c.time, c.kid, c.sig)
  }

  /** The last record of a chain (checked), else its retention checkpoint; null when there is neither. */
  function headOf(database: DatabaseSync, chain: string): SinkHead | null {
    const known = database.prepare('SELECT no FROM audit_chains WHERE chain = ?').get(chain) as { no: number } | undefined
    if (!known) return null
    const last = database.prepare('SELECT * FROM audit_records WHERE chain = ? ORDER BY seq DESC LIMIT 1').get(known.no) as Record<string, unknown> | undefined
    if (last) return checkedHead(Number(last.seq), () => recordFromRow(last))
    const checkpoint = database.prepare('SELECT seq, hash FROM audit_checkpoint WHERE chain = ?').get(known.no) as ChainHead | undefined
    return checkpoint ? { seq: checkpoint.seq, hash: checkpoint.hash, id: null, problem: null } : null
  }

  /** Inserts rows (a replayed one is ignored) and keeps the console's rollups; inside a transaction. */
  function insertRows(database: DatabaseSync, rows: readonly StoredRow[]): number {
    // New rows get rowids above the largest (no rowid is reused while it is the largest), so
    // the rows above it are exactly the ones this batch inserted: not the ignored replays.
    const before = (maxRowid ??= database.prepare('SELECT coalesce(max(rowid), 0) AS last FROM audit_records')).get() as { last: number }
    rollup.clear()
    let inserted = 0
    for (let i = 0; i < rows.length; i += ROWS_PER_INSERT) {
      const end = Math.min(i + ROWS_PER_INSERT, rows.length)
      const params = new Array<unknown>((end - i) * INSERT_COLUMNS.length)
      let at = 0
      for (let r = i; r < end; r++) at = bind(params, at, chainNoOf((rows[r] as StoredRow).chain), rows[r] as StoredRow, rollup)
      inserted += Number(insertOf(end - i).run(...(params as Array<string | number | null>)).changes)
    }
    if (inserted === rows.length) {
      // Every row is new: the batch's own counts (sqlite-rollup.ts), not its rows read back.
      rollup.write(rollupUpserts ??= prepareRollupUpserts(database))
    } else if (inserted > 0) {
      // A replay among them: only SQL knows which rows were ignored.
      rollUps ??= rollupInserts('rowid > ?', 'ON CONFLICT DO UPDATE SET n = n + excluded.n').map((sql) => database.prepare(sql))
      for (const rollUp of rollUps) rollUp.run(before.last)
    }
    if (inserted > 0) (coveredUpdate ??= database.prepare(COVERED_UPDATE)).run()
    return inserted
  }

  return {
    name: sinkName({ type: 'sqlite', path }),
    async open() {
      openFile()
    },
    async head(chain): Promise<SinkHead | null> {
      if (!db) throw new Error('the SQLite audit sink is not open')
      return headOf(db, chain)
    },
    async write(rows) {
      if (!db) throw new Error('the SQLite audit sink is not open')
      stillThere(db)
      // IMMEDIATE: the write lock before reading where the table ends, so no other writer comes between.
      inTransaction(db, () => void insertRows(db as DatabaseSync, rows))
    },
    async append(chain, build, sign) {
      if (!db) throw new Error('the SQLite audit sink is not open')
      stillThere(db)
      // The chain's head is read under the write lock, so another writer of the same chain (a
      // second command at once) waits for this row and links to it, rather than beside it.
      return inTransaction(db, () => {
        const row = { chain, ...build(headOf(db as DatabaseSync, chain)) }
        if (insertRows(db as DatabaseSync, [row]) !== 1) throw new Error(`record ${row.seq} of chain ${chain} is already there`)
        // The new head, signed in the record's transaction: the chain is anchored as soon as it is longer.
        if (sign) keepCheckpoint(db as DatabaseSync, sign(row))
        return row
      })
    },
    async checkpoint(c) {
      if (!db) throw new Error('the SQLite audit sink is not open')
      keepCheckpoint(db, c)
    },
    async ping() {
      if (!db) openFile() // closed when its file was found gone (stillThere)
      const database = db as DatabaseSync
      database.prepare('SELECT 1').get()
    },
    async deleteBefore(timeMs, sign: CutSigner) {
      const database = db
      if (!database) return 0
      // The checkpoint remembers the last deleted record of each chain, so `audit verify` knows
      // where a chain legitimately starts after retention (chains of earlier runs age out too).
      // Each chain loses the records before its first one still in the window: records are numbered
      // as requests end, so an old-started long request's record can follow younger ones, which stay.
      const lasts = database.prepare(`SELECT chain, coalesce((SELECT min(k.seq) - 1 FROM audit_records k WHERE k.chain = o.chain AND k.time_ms >= ?), max(seq)) AS seq
        FROM audit_records o WHERE time_ms < ? GROUP BY chain`).all(timeMs, timeMs) as Array<{ chain: number; seq: number }>
      if (lasts.length === 0) return 0
      return inTransaction(database, () => {
        let deleted = 0
        for (const { chain, seq } of lasts) {
          const cut = database.prepare('SELECT hash FROM audit_records WHERE chain = ? AND seq = ?').get(chain, seq) as { hash: string } | undefined
          if (cut === undefined) continue // the chain's first record is still in the window: nothing goes yet
          const { hash } = cut
          // Signed, so that a row written by hand (the oldest records deleted outside retention) shows.
          const named = database.prepare('SELECT chain FROM audit_chains WHERE no = ?').get(chain) as { chain: string } | undefined
          // Records under a number no chain has were written outside the gateway: left for verify to name.
          if (named === undefined) continue
          const name = named.chain
          const newest = (database.prepare('SELECT max(time_ms) AS ms FROM audit_records WHERE chain = ? AND seq <= ?').get(chain, seq) as { ms: number }).ms
          const signed = sign({ chain: name, seq, hash, newest: new Date(newest).toISOString() })
          database.prepare(`INSERT INTO audit_checkpoint (chain, seq, hash, newest, retention_ms, time, kid, sig) VALUES (?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (chain) DO UPDATE SET
            seq = excluded.seq, hash = excluded.hash, newest = excluded.newest, retention_ms = excluded.retention_ms, time = excluded.time, kid = excluded.kid, sig = excluded.sig`)
            .run(chain, seq, hash, signed.newest, signed.retention ?? null, signed.time, signed.kid, signed.sig)
          deleted += Number(database.prepare('DELETE FROM audit_records WHERE chain = ? AND seq <= ?').run(chain, seq).changes)
        }
        // The console's rollups age with the records (whole minutes before the cut).
        for (const table of ROLLUP_TABLES) {
          database.prepare(`DELETE FROM ${table} WHERE minute < ?`).run(Math.floor(timeMs / 60_000))
        }
        return deleted
      }, 'BEGIN')
    },
    async close() {
      inserts.clear()
      maxRowid = undefined
      rollUps = undefined
      rollupUpserts = undefined
      coveredUpdate = undefined
      db?.close()
      db = undefined
    },
  }
}
