// What the dataset backend needs of a database, whatever it is: a query opened in a read-only
// transaction with a statement timeout, its rows read in batches (the next batch is asked for only
// once the client took the last: backpressure reaches the database), and a way to end it early.
//
// Every cell is text in PostgreSQL's text format (or null), whatever the database: the writers
// (formats.ts) turn it into JSON, CSV or Arrow by the column's kind. CSV, the busiest, then costs
// almost nothing per cell, as psql's \copy.
import type { KeyValue } from './cursor.ts'

/** How a column's text is read. */
export type ColumnKind = 'int' | 'bigint' | 'number' | 'decimal' | 'bool' | 'date' | 'timestamp' | 'timestamptz' | 'json' | 'string' | 'bytes'

export interface Column {
  readonly name: string
  readonly kind: ColumnKind
}

export type Cell = string | null
export type Row = Cell[]

export interface RowSource {
  /** The result's columns: known once the first read returned. */
  readonly columns: readonly Column[]
  /** Up to `max` rows; an empty array once the result is exhausted. */
  read(max: number): Promise<Row[]>
  /** The end of a query that ran its course (or stopped at max_rows): its connection goes back to the pool. */
  close(): Promise<void>
  /** The client went away: the query is cancelled in the database and its connection dropped. */
  abort(): void
  /**
   * As Datasource.sameKeyByCollation, asked of the query itself: at a page's end, once every row it
   * needs is read (no read may follow), on the query's own connection and transaction.
   */
  sameKeyByCollation?(statement: { text: string; values: readonly unknown[] }, key: readonly string[], a: readonly KeyValue[], b: readonly KeyValue[]): Promise<boolean>
}

export interface SourceQuery {
  /** The statement, with positional parameters ($1 in PostgreSQL, ?1 in SQLite). */
  text: string
  values: readonly unknown[]
  timeoutMs: number
  requestId: string
  /** The request's trace id: logged with its request id when the statement fails. */
  traceId: string | null
  /** The request parameter each value binds, by position (null: the caller's identity, a cursor's key). */
  parameterNames?: ReadonlyArray<string | null>
  /** The client went (or the shutdown cut it) while the query was opened: open() stops waiting and drops its connection. */
  signal?: AbortSignal
}

export interface Datasource {
  readonly name: string
  readonly type: 'postgres' | 'sqlite'
  /** The key for `hash` masks and paging cursors (datasources[].key, or one made at start). */
  readonly key: Buffer
  /** For /readyz: `connected`, `unavailable: why`, `not yet connected`. */
  status(): string
  /** Throws 502 datasource_error (unreachable, refused) or 504 query_timeout before any row. */
  open(query: SourceQuery): Promise<RowSource>
  /**
   * Whether two paging keys whose values differ are one key to the database, as the result's key
   * columns compare them (a collation); absent where the values decide. Asked only at a page's end.
   */
  sameKeyByCollation?(statement: { text: string; values: readonly unknown[] }, key: readonly string[], a: readonly KeyValue[], b: readonly KeyValue[], query: QueryIds): boolean
  /** The columns of a statement without its rows (for `_schema`); `signal` as SourceQuery's. */
  describe(text: string, parameterCount: number, signal?: AbortSignal): Promise<Column[]>
  /** Secrets referenced by url and key, resolved now (at compile and after each refresh): a rotated password is used by the next connection. */
  applySecrets(resolve: (template: string) => string): void
  close(): Promise<void>
}

/** The request a query runs for, as its log lines name it. */
export type QueryIds = Pick<SourceQuery, 'requestId' | 'traceId'>

/** A _schema request's description of a statement: logged under `schema`, as it was. */
export const SCHEMA_QUERY: QueryIds = { requestId: 'schema', traceId: null }

/** The log fields naming a query's request, as the audit record names it. */
export function queryLogFields(query: QueryIds): { request_id: string; trace_id: string | null } {
  return { request_id: query.requestId, trace_id: query.traceId }
}
