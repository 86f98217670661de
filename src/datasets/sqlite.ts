// An SQLite datasource (node:sqlite): the file opened read-only, so no statement can write to it.
// SQLite runs on the gateway's thread: rows are stepped a batch at a time, the event loop gets a
// turn between batches, and the timeout is checked between rows (one step that runs long, such as
// a sort over a large table, cannot be interrupted: keep SQLite datasets small or indexed).
import { DatabaseSync, type StatementSync } from 'node:sqlite'
import type { DatasourceConfig } from '../config/index.ts'
import { GatewayError } from '../errors/index.ts'
import { callerValueRefused } from './params.ts'
import type { Logger } from '../telemetry/index.ts'
import type { Cell, Column, ColumnKind, Datasource, Row, RowSource, SourceQuery } from './source.ts'

type SqliteConfig = Extract<DatasourceConfig, { type: 'sqlite' }>

/** `options.key`: the key when the config names none (registry.ts). */
export function sqliteDatasource(config: SqliteConfig, logger: Logger, options: { offline: boolean; key: Buffer }): Datasource {
  let db: DatabaseSync | null = null
  let state = 'not yet connected'
  let key: Buffer = config.key === undefined ? options.key : Buffer.from(config.key)

  function database(): DatabaseSync {
    if (db !== null) return db
    try {
      db = new DatabaseSync(config.path, { readOnly: true })
      state = 'connected'
      return db
    } catch (err) {
      const first = !state.startsWith('unavailable')
      state = `unavailable: ${(err as Error).message}`
      if (first) logger.warn({ datasource: config.name, reason: (err as Error).message }, `datasource ${config.name} is unavailable: its datasets answer 502 datasource_error`)
      throw new GatewayError('datasource_error', { detail: `Datasource "${config.name}" is unavailable: ${(err as Error).message}.`, cause: err })
    }
  }

  function prepare(text: string, requestId: string): StatementSync {
    try {
      const statement = database().prepare(text)
      statement.setReturnArrays(true)
      statement.setReadBigInts(true)
      return statement
    } catch (err) {
      throw failure(config.name, err, logger, requestId)
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
      const statement = prepare(query.text, query.requestId)
      const declared = statement.columns()
      const started = performance.now()
      let rows: Iterator<unknown>
      try {
        rows = statement.iterate(...(query.values as never[]))[Symbol.iterator]()
      } catch (err) {
        throw failure(config.name, err, logger, query.requestId, query.parameterNames)
      }
      const columns: Column[] = declared.map((column) => ({ name: column.name, kind: kindOf(column.type) }))
      // An expression (count(*), a + b) declares no type: its kind is taken from the first row's value.
      let untyped = declared.flatMap((column, i) => (column.type === null ? [i] : []))
      let done = false
      return {
        columns,
        async read(max) {
          if (done) return []
          await new Promise<void>((resolve) => setImmediate(resolve))
          const out: Row[] = []
          try {
            while (out.length < max) {
              const next = rows.next()
              if (next.done) {
                done = true
                break
              }
              if (untyped.length > 0) untyped = inferKinds(next.value as unknown[], columns, untyped)
              out.push(textRow(next.value as unknown[], columns))
              if ((out.length & 255) === 0 && performance.now() - started > query.timeoutMs) throw timeout(config.name)
            }
          } catch (err) {
            done = true
            rows.return?.()
            throw failure(config.name, err, logger, query.requestId, query.parameterNames)
          }
          if (performance.now() - started > query.timeoutMs) {
            done = true
            rows.return?.()
            throw timeout(config.name)
          }
          return out
        },
        async close() {
          done = true
          rows.return?.()
        },
        abort() {
          done = true
          rows.return?.()
        },
      }
    },
    async describe(text: string) {
      return prepare(text, 'schema').columns().map((column) => ({ name: column.name, kind: kindOf(column.type) }))
    },
    applySecrets(resolve) {
      if (config.key !== undefined) key = Buffer.from(resolve(config.key))
    },
    async close() {
      db?.close()
      db = null
    },
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
function inferKinds(values: readonly unknown[], columns: Column[], untyped: readonly number[]): number[] {
  const left: number[] = []
  for (const i of untyped) {
    const value = values[i]
    const kind: ColumnKind | null = typeof value === 'bigint' ? 'bigint' : typeof value === 'number' ? 'number' : value === null || value === undefined ? null : 'string'
    if (kind === null) left.push(i)
    else columns[i] = { name: (columns[i] as Column).name, kind }
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

function failure(name: string, err: unknown, logger: Logger, requestId: string, parameterNames?: ReadonlyArray<string | null>): GatewayError {
  if (err instanceof GatewayError) return err
  const message = (err as Error).message
  const refused = parameterNames !== undefined && CALLER_VALUE_ERRORS.test(message) ? callerValueRefused(parameterNames, message) : null
  if (refused !== null) return refused
  if (/readonly|read-only/i.test(message)) {
    return new GatewayError('datasource_error', { detail: `The dataset's statement tried to write: datasource "${name}" is opened read-only.`, cause: err })
  }
  logger.error({ datasource: name, request_id: requestId, reason: message }, `datasource ${name}: the statement failed`)
  return new GatewayError('datasource_error', { detail: `Datasource "${name}" refused the statement; the gateway's log has the message under this request id.`, cause: err })
}
