// An SQLite datasource (node:sqlite): the file opened read-only, so no statement can write to it.
// SQLite runs on the gateway's thread: rows are stepped a batch at a time, the event loop gets a
// turn between batches, and the timeout is checked between rows (one step that runs long, such as
// a sort over a large table, cannot be interrupted: keep SQLite datasets small or indexed).
import { statSync } from 'node:fs'
import { DatabaseSync, type StatementSync } from 'node:sqlite'
import type { DatasourceConfig } from '../config/index.ts'
import { GatewayError } from '../errors/index.ts'
import { callerValueRefused } from './params.ts'
import { quoteIdentifier } from './query.ts'
import type { Logger } from '../telemetry/index.ts'
import type { KeyValue } from './cursor.ts'
import { queryLogFields, SCHEMA_QUERY, type Cell, type Column, type ColumnKind, type Datasource, type Row, type QueryIds, type RowSource, type SourceQuery } from './source.ts'

type SqliteConfig = Extract<DatasourceConfig, { type: 'sqlite' }>

/** `options.key`: the key when the config names none (registry.ts). */
export function sqliteDatasource(config: SqliteConfig, logger: Logger, options: { offline: boolean; key: Buffer }): Datasource {
  let db: OpenFile | null = null
  let state = 'not yet connected'
  let key: Buffer = config.key === undefined ? options.key : Buffer.from(config.key)

  /**
   * The file at the path, opened anew when another file took its place: a report rebuilt each night
   * and renamed over the old one (the usual way to replace it whole) was read from the old file,
   * through the handle opened at start, until a restart (an adversarial probe). One stat a query.
   * Queries still reading the old file finish there; it is closed after the last.
   */
  function database(): OpenFile {
    if (db !== null) {
      const now = fileIdentity(config.path)
      if (now === null || now === db.identity) return db
      logger.info({ datasource: config.name }, `datasource ${config.name}: its file was replaced; reading the new one`)
      retire(db)
      db = null
    }
    try {
      // Which file, before opening: one that takes its place meanwhile is then seen at the next query.
      const identity = fileIdentity(config.path)
      db = { db: new DatabaseSync(config.path, { readOnly: true }), identity, reading: 0, retired: false }
      state = 'connected'
      return db
    } catch (err) {
      const first = !state.startsWith('unavailable')
      state = `unavailable: ${(err as Error).message}`
      if (first) logger.warn({ datasource: config.name, reason: (err as Error).message }, `datasource ${config.name} is unavailable: its datasets answer 502 datasource_error`)
      throw new GatewayError('datasource_error', { detail: `Datasource "${config.name}" is unavailable: ${(err as Error).message}.`, cause: err })
    }
  }

  function prepare(text: string, ids: QueryIds): { statement: StatementSync; file: OpenFile } {
    try {
      const file = database()
      const statement = file.db.prepare(text)
      statement.setReturnArrays(true)
      statement.setReadBigInts(true)
      return { statement, file }
    } catch (err) {
      if (isBusy(err)) throw err // whileLocked waits for it
      throw failure(config.name, err, logger, ids)
    }
  }

  if (!options.offline) {
    try {
      database()
    } catch {
      // said in the log and in /readyz; each request tries again
    }
  }

  return {
    name: config.name,
    type: 'sqlite',
    get key() {
      return key
    },
    status: () => state,
    async open(query: SourceQuery): Promise<RowSource> {
      const started = performance.now()
      // The first row read here: its step takes the file's read lock, which a writer may hold.
      const { statement, file, rows, first } = await whileLocked(() => {
        const { statement, file } = prepare(query.text, query)
        try {
          const rows = statement.iterate(...(query.values as never[]))[Symbol.iterator]()
          return { statement, file, rows, first: rows.next() }
        } catch (err) {
          if (isBusy(err)) throw err
          throw failure(config.name, err, logger, query, query.parameterNames)
        }
      }, query.timeoutMs, config.name, query.signal)
      const declared = statement.columns()
      let pending: IteratorResult<unknown> | null = first
      file.reading++
      let stopped = false
      // Once, by whichever way the query ends (a later return() on a closed file throws): a retired
      // file closes after its last reader.
      const stop = () => {
        if (stopped) return
        stopped = true
        rows.return?.()
        file.reading--
        if (file.retired && file.reading === 0) file.db.close()
      }
      const columns: Column[] = declared.map((column) => ({ name: column.name, kind: kindOf(column.type) }))
      // An expression (count(*), a + b) declares no type: its kind is taken from the first row's value.
      let untyped = declared.flatMap((column, i) => (column.type === null ? [i] : []))
      // Those read as integers: a float later in the first batch (coalesce(discount, 0)) makes one a
      // number before the writers take the kinds, rather than an integer column with no room for 0.5.
      // Looked at in the first batch only (below).
      let integers: number[] = []
      let done = false
      return {
        columns,
        async read(max) {
          if (done) return []
          await new Promise<void>((resolve) => setImmediate(resolve))
          const out: Row[] = []
          try {
            while (out.length < max) {
              const next = pending ?? rows.next()
              pending = null
              if (next.done) {
                done = true
                stop()
                break
              }
              if (untyped.length > 0) untyped = inferKinds(next.value as unknown[], columns, untyped, integers)
              if (integers.length > 0) integers = widenToFloats(next.value as unknown[], columns, integers)
              out.push(textRow(next.value as unknown[], columns))
              if ((out.length & 255) === 0 && performance.now() - started > query.timeoutMs) throw timeout(config.name)
            }
          } catch (err) {
            done = true
            stop()
            throw failure(config.name, err, logger, query, query.parameterNames)
          }
          if (performance.now() - started > query.timeoutMs) {
            done = true
            stop()
            throw timeout(config.name)
          }
          // The writers took the kinds from the first batch: widening later changes nothing they
          // write, and cost every row of an expression column a look.
          integers = []
          return out
        },
        async close() {
          done = true
          stop()
        },
        abort() {
          done = true
          stop()
        },
      }
    },
    /**
     * SQLite's own collations that hold different text as one are NOCASE (ASCII letters' case) and
     * RTRIM (trailing spaces): keys that differ otherwise are two, and cost no query. Else SQLite
     * says: a row of the result whose key equals both is there only when they are one to it.
     */
    sameKeyByCollation(statement, key, a, b, query) {
      const couldBeOne = (value: KeyValue, other: KeyValue | undefined) => value === other || (Buffer.isBuffer(value) && Buffer.isBuffer(other) && value.equals(other)) || (typeof value === 'string' && typeof other === 'string' && looseText(value) === looseText(other))
      if (!a.every((value, j) => couldBeOne(value, b[j]))) return false
      const columns = key.map(quoteIdentifier).join(', ')
      const slots = (from: number) => key.map((_, j) => `?${from + j + 1}`).join(', ')
      const n = statement.values.length
      const text = `SELECT 1 FROM (\n${statement.text}\n) AS bouncer_tie WHERE (${columns}) = (${slots(n)}) AND (${columns}) = (${slots(n + key.length)}) LIMIT 1`
      try {
        const { statement: tie } = prepare(text, query)
        return tie.get(...([...statement.values, ...a, ...b] as never[])) !== undefined
      } catch (err) {
        throw failure(config.name, err, logger, query)
      }
    },
    async describe(text: string, _parameterCount: number, signal?: AbortSignal) {
      return (await whileLocked(() => prepare(text, SCHEMA_QUERY), DESCRIBE_LOCK_MS, config.name, signal)).statement.columns().map((column) => ({ name: column.name, kind: kindOf(column.type) }))
    },
    applySecrets(resolve) {
      if (config.key !== undefined) key = Buffer.from(resolve(config.key))
    },
    async close() {
      // As a replaced file is (database()): a query still streaming (a reload changed this
      // datasource's settings) reads to its end, and the file closes after its last reader. Closed
      // at once, its next page failed mid-stream (502), a page already read included.
      if (db !== null) retire(db)
      db = null
    },
  }
}

/** The database file opened, and which file it was: queries reading it, and whether another took its place. */
interface OpenFile {
  readonly db: DatabaseSync
  readonly identity: string | null
  reading: number
  retired: boolean
}

function retire(file: OpenFile): void {
  file.retired = true
  if (file.reading === 0) file.db.close()
}

/** The file at the path (device and inode); null when it cannot be read now (then the open one stays). */
function fileIdentity(path: string): string | null {
  try {
    const stat = statSync(path, { bigint: true })
    return `${stat.dev}:${stat.ino}`
  } catch {
    return null
  }
}

/** SQLite's type affinity rules (§3.1 of "Datatypes In SQLite"), with dates, times and booleans told apart. */
function kindOf(declared: string | null): ColumnKind {
  if (declared === null) return 'string'
  const type = declared.toUpperCase()
  if (type.includes('INT')) return 'bigint'
  if (type.includes('BOOL')) return 'bool'
  if (type.includes('TIMESTAMP') || type.includes('DATETIME')) return 'timestamp'
  if (type.includes('DATE')) return 'date'
  if (type.includes('CHAR') || type.includes('CLOB') || type.includes('TEXT')) return 'string'
  if (type.includes('BLOB')) return 'bytes'
  if (type.includes('REAL') || type.includes('FLOA') || type.includes('DOUB')) return 'number'
  if (type.includes('NUM') || type.includes('DEC')) return 'decimal'
  return 'string'
}

/** The kinds of untyped columns that have a value in this row; the indexes still unknown. */
function inferKinds(values: readonly unknown[], columns: Column[], untyped: readonly number[], integers: number[]): number[] {
  const left: number[] = []
  for (const i of untyped) {
    const value = values[i]
    const kind: ColumnKind | null = typeof value === 'bigint' ? 'bigint' : typeof value === 'number' ? 'number' : value === null || value === undefined ? null : 'string'
    if (kind === null) left.push(i)
    else {
      columns[i] = { name: (columns[i] as Column).name, kind }
      if (kind === 'bigint') integers.push(i)
    }
  }
  return left
}

/**
 * Columns read as integers that hold a float in this row become numbers (setReadBigInts: an integer
 * is a bigint, a float a number); the indexes still integers. An expression mixes them: the first
 * row's coalesce(discount, 0) is 0, the next 0.5, which went as the string "0.5" in JSON and as null
 * in Arrow's Int64 (an adversarial probe).
 */
function widenToFloats(values: readonly unknown[], columns: Column[], integers: readonly number[]): number[] {
  const left: number[] = []
  for (const i of integers) {
    if (typeof values[i] === 'number') columns[i] = { name: (columns[i] as Column).name, kind: 'number' }
    else left.push(i)
  }
  return left
}

/** A row in PostgreSQL's text format, as the writers read every source. */
function textRow(values: unknown[], columns: readonly Column[]): Row {
  const row: Row = new Array<Cell>(values.length)
  for (let i = 0; i < values.length; i++) {
    const value = values[i]
    if (value === null || value === undefined) row[i] = null
    else if (typeof value === 'string') row[i] = value
    else if (value instanceof Uint8Array) row[i] = `\\x${Buffer.from(value).toString('hex')}`
    else if (columns[i]?.kind === 'bool') row[i] = value === 0 || value === 0n ? 'f' : 't'
    else row[i] = String(value)
  }
  return row
}

/** How long describe() waits for a file another connection holds locked (a dataset's query: its timeout). */
const DESCRIBE_LOCK_MS = 10_000

/** SQLITE_BUSY, any extended form: another connection holds the file locked (a writer committing, or in an exclusive transaction). */
function isBusy(err: unknown): boolean {
  const code = (err as { errcode?: unknown }).errcode
  return typeof code === 'number' && (code & 0xff) === 5
}

/**
 * `attempt` again while the file is locked by another connection, until `ms` have passed: then 504
 * query_timeout. Read while a writer committed, a dataset was 502 datasource_error at once with an
 * error logged (an adversarial probe). Not SQLite's busy timeout: it waits on the gateway's thread,
 * and every request would wait with it.
 */
async function whileLocked<T>(attempt: () => T, ms: number, name: string, signal?: AbortSignal): Promise<T> {
  const until = performance.now() + ms
  for (let pause = 5; ; pause = Math.min(pause * 2, 100)) {
    try {
      return attempt()
    } catch (err) {
      if (!isBusy(err)) throw err
      if (performance.now() + pause > until) throw new GatewayError('query_timeout', { detail: `The file of datasource "${name}" stayed locked by another connection (a write) longer than the dataset's timeout.`, cause: err })
    }
    await new Promise((resolve) => setTimeout(resolve, pause))
    if (signal?.aborted) throw new Error('the client went before the query was opened')
  }
}

/** Text as NOCASE and RTRIM may both compare it: ASCII letters in lower case, no trailing spaces. */
function looseText(text: string): string {
  return text.replace(/ +$/, '').replace(/[A-Z]+/g, (letters) => letters.toLowerCase())
}

function timeout(name: string): GatewayError {
  return new GatewayError('query_timeout', { detail: `The query of datasource "${name}" ran longer than the dataset's timeout and was stopped.` })
}

/**
 * SQLite's errors of a value the statement uses as a LIKE pattern or escape, or as a LIMIT or
 * OFFSET: in a statement that binds the caller's values they come from one of those (as
 * PostgreSQL's patternRefused says). They were 502 with an error logged. Not "malformed JSON" nor
 * "integer overflow": a table's own values (a JSON column, a sum) raise those as often.
 */
const CALLER_VALUE_ERRORS = /^(?:ESCAPE expression must be a single character|LIKE or GLOB pattern too complex|datatype mismatch)$/

function failure(name: string, err: unknown, logger: Logger, query: QueryIds, parameterNames?: ReadonlyArray<string | null>): GatewayError {
  if (err instanceof GatewayError) return err
  const message = (err as Error).message
  const refused = parameterNames !== undefined && CALLER_VALUE_ERRORS.test(message) ? callerValueRefused(parameterNames, message) : null
  if (refused !== null) return refused
  if (/readonly|read-only/i.test(message)) {
    return new GatewayError('datasource_error', { detail: `The dataset's statement tried to write: datasource "${name}" is opened read-only.`, cause: err })
  }
  logger.error({ datasource: name, ...queryLogFields(query), reason: message }, `datasource ${name}: the statement failed`)
  return new GatewayError('datasource_error', { detail: `Datasource "${name}" refused the statement; the gateway's log has the message under this request id.`, cause: err })
}
