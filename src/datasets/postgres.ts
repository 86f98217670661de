// A PostgreSQL datasource: a bounded pool (max_connections), each query in its own READ ONLY
// transaction with SET LOCAL statement_timeout, its rows read from a server-side cursor (pg-cursor)
// a batch at a time. The url may hold a secret: when a refresh changes it, the next query opens a
// new pool with it and the old one closes once its connections come back (no restart).
import type pg from 'pg'
import type { DatasourceConfig } from '../config/index.ts'
import { DeadlineExceeded, loadPg, loadPgCursor, withinDeadline } from '../collections/index.ts'
import { GatewayError } from '../errors/index.ts'
import { boundParameterOf } from './bind-context.ts'
import { callerValueRefused, invalidParameter } from './params.ts'
import { scrub, type Logger } from '../telemetry/index.ts'
import type { KeyValue } from './cursor.ts'
import { quoteIdentifier } from './query.ts'
import { queryLogFields, SCHEMA_QUERY, type Column, type ColumnKind, type Datasource, type Row, type QueryIds, type RowSource, type SourceQuery } from './source.ts'

type PostgresConfig = Extract<DatasourceConfig, { type: 'postgres' }>

/** Every value as PostgreSQL sent it (text): the writers read it by the column's kind. */
const AS_TEXT = { getTypeParser: () => (text: string) => text } as unknown as pg.CustomTypesConfig

/** Type OIDs (pg_type) and how their text is read; any other type is a string. */
const KINDS: ReadonlyMap<number, ColumnKind> = new Map([
  [16, 'bool'], [17, 'bytes'], [20, 'bigint'], [21, 'int'], [23, 'int'], [26, 'bigint'], [700, 'number'], [701, 'number'],
  [1700, 'decimal'], [1082, 'date'], [1114, 'timestamp'], [1184, 'timestamptz'], [114, 'json'], [3802, 'json'],
] as [number, ColumnKind][])

/** The output settings the readers of a value's text assume (PostgreSQL's defaults, but a role or database may change them). */
const SESSION_SETTINGS = "SET LOCAL TimeZone = 'UTC'; SET LOCAL DateStyle = 'ISO, MDY'; SET LOCAL IntervalStyle = 'postgres'; SET LOCAL bytea_output = 'hex'; SET LOCAL extra_float_digits = 1"

/** How often a datasource that is down is tried again for /readyz (requests try at once anyway). */
const REPROBE_MS = 10_000

/** `options.key`: the key when the config names none (registry.ts). */
export function postgresDatasource(config: PostgresConfig, logger: Logger, options: { offline: boolean; key: Buffer }): Datasource {
  let url = config.url
  let key: Buffer = config.key === undefined ? options.key : Buffer.from(config.key)
  let pool: pg.Pool | null = null
  let poolUrl = ''
  let state = 'not yet connected'
  let closed = false
  let reprobe: NodeJS.Timeout | null = null

  function currentPool(): pg.Pool {
    if (pool !== null && poolUrl === url) return pool
    const old = pool
    pool = new (loadPg().Pool)({
      connectionString: url,
      max: config.max_connections,
      connectionTimeoutMillis: config.connect_timeout,
      idleTimeoutMillis: 30_000,
      allowExitOnIdle: true,
      application_name: `bouncer:${config.name}`,
    })
    // An idle connection the server closed: the pool drops it; the next query opens another.
    pool.on('error', (err) => logger.warn({ datasource: config.name, reason: err.message }, `datasource ${config.name}: an idle connection failed`))
    poolUrl = url
    if (old !== null) void old.end().catch(() => {})
    return pool
  }

  function markDown(err: Error): void {
    const first = !state.startsWith('unavailable')
    state = `unavailable: ${scrub(err.message)}`
    if (first) logger.warn({ datasource: config.name, reason: err.message }, `datasource ${config.name} is unavailable: its datasets answer 502 datasource_error`)
    if (reprobe === null && !closed && !options.offline) {
      reprobe = setTimeout(() => {
        reprobe = null
        void probe()
      }, REPROBE_MS).unref()
    }
  }

  async function probe(): Promise<void> {
    // Not before the secrets are in the url (they are put there right after compiling).
    if (closed || url.includes('${secret:')) return
    try {
      const client = await currentPool().connect()
      client.release()
      state = 'connected'
    } catch (err) {
      markDown(err as Error)
    }
  }

  async function connect(): Promise<Lent> {
    const current = currentPool()
    const busy = current.totalCount >= config.max_connections && current.idleCount === 0
    try {
      const client = await current.connect()
      state = 'connected'
      return lent(client)
    } catch (err) {
      // Every connection was in use and none came free in time: the database is busy, not down.
      if (busy && current.totalCount >= config.max_connections) {
        throw new GatewayError('upstream_saturated', {
          detail: `Datasource "${config.name}" has all ${config.max_connections} connections in use; none came free within ${config.connect_timeout}ms.`,
          headers: { 'retry-after': '1' },
        })
      }
      markDown(err as Error)
      // The driver's message can name the url's user (a secret) or an internal address: the log and /readyz have it, the caller does not (found by an adversarial probe).
      throw new GatewayError('datasource_error', { detail: `Datasource "${config.name}" is unavailable; the gateway's log and /readyz have the reason.`, cause: err })
    }
  }

  /**
   * The transaction every dataset query runs in: read-only, bounded in time, timestamps in UTC, and
   * values in the text forms the driver and the value writers read (ISO dates, hex bytea,
   * shortest-exact floats), whatever the role or database sets: a role with `DateStyle = 'SQL, DMY'`
   * sent `31/01/2026` and its `bytea_output = escape` other bytes.
   */
  async function begin(client: pg.PoolClient, timeoutMs: number): Promise<void> {
    await client.query(`BEGIN READ ONLY; SET LOCAL statement_timeout = ${Math.floor(timeoutMs)}; ${SESSION_SETTINGS}`)
  }

  /** begin(), bounded by the client too: a stalled server never answers with its own timeout. */
  async function beginWithin(client: pg.PoolClient, timeoutMs: number, stallMs: number): Promise<void> {
    try {
      await withinDeadline(begin(client, timeoutMs), stallMs, `datasource ${config.name}`, () => {})
    } catch (err) {
      if (err instanceof DeadlineExceeded) throw stalled(config.name, stallMs, err)
      throw err
    }
  }

  const datasource: Datasource = {
    name: config.name,
    type: 'postgres',
    get key() {
      return key
    },
    status: () => state,
    async open(query: SourceQuery): Promise<RowSource> {
      const lentClient = await connect()
      try {
        await untilAborted(beginWithin(lentClient.client, query.timeoutMs, query.timeoutMs + STALL_MARGIN_MS), query.signal)
      } catch (err) {
        lentClient.release(true)
        if (query.signal?.aborted) throw err // the client went: no one to answer, nothing failed to log (backend.ts)
        throw err instanceof GatewayError ? err : queryError(config.name, err, logger, query)
      }
      return cursorSource(lentClient, query, url, config.name, logger)
    },
    async describe(text: string, parameterCount: number, signal?: AbortSignal): Promise<Column[]> {
      const lentClient = await connect()
      const { client } = lentClient
      // Bounded by the client too, as open(): over a server or network that stopped answering, the
      // first paged request (or _schema) waited until TCP gave up, and a SIGTERM's cut did not end
      // it: its record was lost (an adversarial probe).
      const stallMs = DESCRIBE_TIMEOUT_MS + STALL_MARGIN_MS
      try {
        const described = async () => {
          await begin(client, DESCRIBE_TIMEOUT_MS)
          const result = await client.query({ text: `SELECT * FROM (\n${text}\n) AS bouncer_schema LIMIT 0`, values: new Array<null>(parameterCount).fill(null), types: AS_TEXT })
          await client.query('ROLLBACK')
          return result
        }
        const result = await untilAborted(withinDeadline(described(), stallMs, `datasource ${config.name}`, () => {}), signal)
        lentClient.release()
        return result.fields.map((field) => ({ name: field.name, kind: KINDS.get(field.dataTypeID) ?? 'string' }))
      } catch (err) {
        lentClient.release(true)
        if (signal?.aborted) throw err // the client went: no one to answer, nothing failed to log (backend.ts)
        if (err instanceof DeadlineExceeded) throw stalled(config.name, stallMs, err)
        throw queryError(config.name, err, logger, SCHEMA_QUERY)
      }
    },
    applySecrets(resolve) {
      // Each secret percent-encoded: a generated password holds `/`, `+` and `=`, which a URL would misread.
      url = config.url.replace(/\$\{secret:[^}]*\}/g, (reference) => encodeURIComponent(resolve(reference)))
      if (config.key !== undefined) key = Buffer.from(resolve(config.key))
    },
    async close() {
      closed = true
      if (reprobe !== null) clearTimeout(reprobe)
      await pool?.end().catch(() => {})
    },
  }
  if (!options.offline) setImmediate(() => void probe())
  return datasource
}

/**
 * The work, or a rejection once `signal` aborts. A client gone while its BEGIN waited on a server that
 * stopped answering held the request until the stall margin (the dataset's timeout + 5 s): cut by a
 * SIGTERM's drain, it outlived the audit log and its record was lost (an adversarial probe).
 */
function untilAborted<T>(work: Promise<T>, signal: AbortSignal | undefined): Promise<T> {
  if (signal === undefined) return work
  if (signal.aborted) {
    work.catch(() => {})
    return Promise.reject(new Error('the client went before the query was opened'))
  }
  return new Promise((resolve, reject) => {
    const onAbort = () => reject(new Error('the client went before the query was opened'))
    signal.addEventListener('abort', onAbort, { once: true })
    work.then(resolve, reject).finally(() => signal.removeEventListener('abort', onAbort))
  })
}

/** A connection lent by the pool, with what failed on it between statements. */
interface Lent {
  readonly client: pg.PoolClient
  /** The connection's own failure while no statement waited on it (the next one answers it). */
  readonly failure: Error | null
  /** Back to the pool (destroyed: closed instead); once. */
  release(destroy?: boolean): void
}

/**
 * pg-pool takes its error listener off a client it lends: the connection failing while no statement
 * waits on it (PostgreSQL ended it while a dataset's client was slow to take the rows) was thrown as
 * uncaught and ended the gateway. A lent client has a listener of ours for the whole checkout.
 */
function lent(client: pg.PoolClient): Lent {
  let failure: Error | null = null
  let released = false
  const onError = (err: Error) => {
    failure = err
  }
  client.on('error', onError)
  return {
    client,
    get failure() {
      return failure
    },
    release(destroy = false) {
      if (released) return
      released = true
      client.removeListener('error', onError)
      client.release(destroy)
    },
  }
}

function cursorSource(lentClient: Lent, query: SourceQuery, url: string, name: string, logger: Logger): RowSource {
  const { client } = lentClient
  const cursor = client.query(new (loadPgCursor())<Row>(query.text, query.values as unknown[], { rowMode: 'array', types: AS_TEXT }))
  let columns: Column[] = []
  let done = false
  let reading = false
  let finished = false
  /** Closed before the query's end, for a question on its connection (sameKeyByCollation). */
  let cursorClosed = false

  function finish(destroy: boolean): void {
    if (finished) return
    finished = true
    lentClient.release(destroy)
  }

  return {
    get columns() {
      return columns
    },
    read(max) {
      const failure = lentClient.failure
      if (failure !== null) {
        done = true
        finish(true)
        return Promise.reject(queryError(name, failure, logger, query))
      }
      if (done) return Promise.resolve([])
      reading = true
      return new Promise<Row[]>((resolve, reject) => {
        // statement_timeout ends a slow query in the server; a server or network that stops
        // answering never says so: the connection is dropped, and the request gets its 504.
        const stallMs = query.timeoutMs + STALL_MARGIN_MS
        let gaveUp = false
        const stall = setTimeout(() => {
          gaveUp = true
          reading = false
          done = true
          finish(true)
          reject(stalled(name, stallMs))
        }, stallMs)
        cursor.read(max, (err, rows, result) => {
          clearTimeout(stall)
          if (gaveUp) return // the connection is gone, and the request answered
          reading = false
          if (err) {
            done = true
            finish(true)
            reject(parameterRefused(err, query.parameterNames) ?? queryError(name, err, logger, query))
            return
          }
          if (columns.length === 0) columns = result.fields.map((field) => ({ name: field.name, kind: KINDS.get(field.dataTypeID) ?? 'string' }))
          if (rows.length < max) done = true
          resolve(rows)
        })
      })
    },
    async close() {
      if (finished) return
      try {
        if (!cursorClosed) await cursor.close()
        await client.query('ROLLBACK')
        finish(false)
      } catch {
        finish(true)
      }
    },
    /**
     * Asked of the database only for values that could be one to it though they differ (mostly
     * they cannot: one query per page saved), on this connection, its cursor closed first (pg runs
     * one query at a time on it, and no row is read after this): a row of the statement whose key
     * equals both is there only when they are one.
     */
    async sameKeyByCollation(statement, key, a, b) {
      if (!a.every((value, j) => couldBeOneKey(value, b[j]))) return false
      const keys = key.map(quoteIdentifier).join(', ')
      const n = statement.values.length
      const slots = (from: number) => key.map((_, j) => `$${from + j + 1}`).join(', ')
      const text = `SELECT 1 FROM (\n${statement.text}\n) AS bouncer_tie WHERE (${keys}) = (${slots(n)}) AND (${keys}) = (${slots(n + key.length)}) LIMIT 1`
      const stallMs = query.timeoutMs + STALL_MARGIN_MS
      done = true
      try {
        const ask = async () => {
          if (!cursorClosed) {
            cursorClosed = true
            await cursor.close()
          }
          return client.query({ text, values: [...statement.values, ...a, ...b], types: AS_TEXT })
        }
        return (await withinDeadline(ask(), stallMs, `datasource ${name}`, () => {})).rows.length > 0
      } catch (err) {
        finish(true)
        if (err instanceof DeadlineExceeded) throw stalled(name, stallMs, err)
        throw queryError(name, err, logger, query)
      }
    },
    abort() {
      if (finished) return
      // A statement still running (a read in flight) is cancelled in the server (a CancelRequest on
      // a new connection); then the connection is closed, which ends the transaction and its portal.
      if (reading) cancelInServer(url, client, cursor)
      finish(true)
    },
  }
}

/**
 * Whether two key values PostgreSQL may hold as one though they differ: text alike but for case,
 * accents, spaces or punctuation (citext, a nondeterministic ICU collation), two intervals ('1 day'
 * and '24:00:00'), two arrays, two spellings of one number. Values that are alike are too (another
 * column of the key may be the one that differs).
 */
function couldBeOneKey(value: KeyValue, other: KeyValue | undefined): boolean {
  if (value === other) return true
  if (Buffer.isBuffer(value) && Buffer.isBuffer(other)) return value.equals(other)
  if (typeof value === 'number' && typeof other === 'number') return Number.isNaN(value) && Number.isNaN(other)
  if (typeof value !== 'string' || typeof other !== 'string') return false
  if (looseText(value) === looseText(other)) return true
  // Two times of day alike ('12:00:00') are one only as the same text: a unit says interval.
  if (INTERVAL_TEXT.test(value) && INTERVAL_TEXT.test(other) && (INTERVAL_UNIT.test(value) || INTERVAL_UNIT.test(other))) return true
  if (value.startsWith('{') && other.startsWith('{')) return true
  return NUMBER_TEXT.test(value) && NUMBER_TEXT.test(other) && Number(value) === Number(other)
}

function looseText(text: string): string {
  return text.normalize('NFKD').replace(/[^\p{L}\p{N}]/gu, '').toLowerCase()
}

/** An interval as IntervalStyle 'postgres' writes one: `1 year 2 mons -3 days +04:05:06.5`. */
const INTERVAL_TEXT = /^(-?\d+ (?:years?|mons?|days?) ?)*([-+]?\d+:\d\d:\d\d(?:\.\d+)?)?$/
const INTERVAL_UNIT = / ?(?:years?|mons?|days?)/
const NUMBER_TEXT = /^-?\d+(?:\.\d+)?$/

/**
 * Past a dataset's timeout the server has cancelled its statement (statement_timeout) and said so;
 * this much longer without a word, the server or the network has stalled (found by a probe: a frozen
 * connection held its request and its pooled connection until TCP gave up, ~15 minutes).
 */
const STALL_MARGIN_MS = 5_000

/** How long a CancelRequest's connection may take before it is given up (the query's own connection is closed anyway). */
const CANCEL_CONNECT_MS = 5_000

/**
 * Asks the server to cancel the statement `client` is running (pg's Client#cancel: a CancelRequest
 * on a new connection). pg listens for that connection's errors only in a connect() the cancel does
 * not run: a server that refused it (restarting, failing over — when clients give up on slow
 * streams) raised an unhandled 'error' that ended the gateway. And a host that drops packets kept
 * the socket connecting for the kernel's SYN timeout (~2 min), one per abandoned request.
 */
function cancelInServer(url: string, client: pg.PoolClient, query: unknown): void {
  const canceller = new (loadPg().Client)({ connectionString: url })
  const { connection } = canceller
  canceller.on('error', () => {})
  connection.on('error', () => {}) // nothing to tell: the cancel is a courtesy, the connection is closed below
  const giveUp = setTimeout(() => connection.stream.destroy(), CANCEL_CONNECT_MS).unref()
  connection.once('end', () => clearTimeout(giveUp)) // the server closes it once it has read the request
  ;(canceller as unknown as { cancel(client: pg.PoolClient, query: unknown): void }).cancel(client, query)
}

/** The statement timeout of describe()'s query (the columns of a dataset's statement, no rows). */
const DESCRIBE_TIMEOUT_MS = 10_000

function stalled(name: string, ms: number, cause?: unknown): GatewayError {
  return new GatewayError('query_timeout', { detail: `Datasource "${name}" did not answer within ${ms}ms: the server or the network stopped answering, and the query was abandoned.`, cause })
}

/**
 * A caller's value the database cannot read as the type its place in the statement has (`id=9999999999`
 * for an integer column, `u=nope` for a uuid) is the caller's mistake: 400 naming the parameter. It was
 * 502 datasource_error with an error logged, so any caller could fill the log and the 5xx rate (an
 * adversarial probe). PostgreSQL says which value it was: a data exception (SQLSTATE class 22) while
 * binding carries `portal "…" parameter $N` as its context (in the server's language:
 * bind-context.ts); a failure in the statement's own values
 * has none, and stays a 502.
 */
function parameterRefused(err: unknown, names: ReadonlyArray<string | null> | undefined): GatewayError | null {
  const { code, where, message } = err as { code?: unknown; where?: unknown; message?: unknown }
  if (names === undefined || typeof code !== 'string' || !code.startsWith('22')) return null
  if (typeof where !== 'string') return patternRefused(code, message, names)
  const position = boundParameterOf(where)
  const name = position === undefined ? undefined : names[position - 1]
  if (typeof name !== 'string') return null
  const type = typeof message === 'string' ? /\bfor type ([\w ]+?)(?::|$)/.exec(message)?.[1] : undefined
  return invalidParameter(name, `not a value the database takes here${type === undefined ? '' : ` (type ${type})`}`)
}

/**
 * SQLSTATEs of a value used as a pattern or a row count that the statement runs with: a regular
 * expression (2201B), a LIKE escape (22025, 22019), a negative LIMIT or OFFSET (2201W, 2201X). Raised
 * while the statement runs, they carry no parameter's position; in a statement that binds the
 * caller's values they come from one of those values (a constant pattern that is wrong fails every
 * request alike, in the first test of the dataset). They were 502 with an error logged: any caller
 * could fill the log and the 5xx rate with `q=(`.
 */
const CALLER_PATTERN_STATES = new Set(['2201B', '22025', '22019', '2201W', '2201X'])

function patternRefused(code: string, message: unknown, names: ReadonlyArray<string | null>): GatewayError | null {
  if (!CALLER_PATTERN_STATES.has(code)) return null
  return callerValueRefused(names, typeof message === 'string' ? message : `SQLSTATE ${code}`)
}

/** A failed statement as the client sees it: the timeout, a write refused, or the server's error (logged). */
function queryError(name: string, err: unknown, logger: Logger, query: QueryIds): GatewayError {
  if (err instanceof GatewayError) return err
  const { code, message } = err as { code?: string; message?: string }
  if (code === '57014' && message?.includes('statement timeout')) {
    return new GatewayError('query_timeout', { detail: `The query of datasource "${name}" ran longer than the dataset's timeout and was cancelled.`, cause: err })
  }
  if (code === '25006') {
    return new GatewayError('datasource_error', { detail: `The dataset's statement tried to write: datasets run in a read-only transaction (${message ?? ''}).`, cause: err })
  }
  logger.error({ datasource: name, ...queryLogFields(query), reason: message, sqlstate: code }, `datasource ${name}: the statement failed`)
  return new GatewayError('datasource_error', {
    detail: code === undefined ? `Datasource "${name}" failed: ${message ?? 'connection lost'}.` : `Datasource "${name}" refused the statement (SQLSTATE ${code}); the gateway's log has the message under this request id.`,
    cause: err,
  })
}
