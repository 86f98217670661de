// A dataset as a route's backend: the parameters checked (400 before any query), the statement run
// in the datasource's read-only transaction, its rows streamed from the cursor in the format asked
// for, masked for this caller. The next batch is read from the database only once the client has
// taken the last one (backpressure); a client that hangs up cancels the query. The audit record,
// metrics and spans name the target `dataset:SOURCE`, and the record lists the masked columns.
import type { ServerResponse } from 'node:http'
import type { DatasetConfig } from '../config/index.ts'
import { RESERVED_QUERY } from '../config/index.ts'
import { cutShort, GatewayError } from '../errors/index.ts'
import { drainedOrClosed } from '../http/index.ts'
import { nothingServed, sendWhole, type Backend, type Exchange, type Identity, type RequestContext, type Served } from '../request/index.ts'
import { signCursor, verifyCursor, type KeyValue } from './cursor.ts'
import { chooseFormat, CONTENT_TYPES, createWriter, type Ending } from './formats.ts'
import { applyMasks, maskedColumns, masksFor } from './masks.ts'
import { compileParams, readParams, readQuery, type CompiledParam, type ParamValue } from './params.ts'
import { bindValues, callerValues, pagedStatement, prepareStatement, type Paging, type PreparedStatement } from './query.ts'
import { columnsSchema } from './schema.ts'
import type { Column, Datasource, Row, RowSource } from './source.ts'

/** Rows per read from the database: one chunk to the client each. */
const BATCH_ROWS = 4_096

/**
 * A batch's cells' text, about (characters): a batch of large rows is cut short of BATCH_ROWS there;
 * rows of 256 characters or fewer fill BATCH_ROWS first. Counted in rows alone, 4,096 rows of 50 KB
 * held ~750 MB in the gateway for one request, and of 150 KB made one chunk longer than a JavaScript
 * string can be: every such answer was cut right after its 200 head (an adversarial probe).
 */
const BATCH_CHARS = 1024 * 1024

/** The first read of a batch, before its rows' size is known. */
const FIRST_READ_ROWS = 64

/**
 * The most an answer to a client without chunked coding (HTTP/1.0) holds, in bytes: such an answer
 * is read whole before its head (wholeAnswer), and a page or result larger is cut here.
 */
const WHOLE_ANSWER_BYTES = 4 * BATCH_CHARS

export interface DatasetRoute {
  readonly id: string
  readonly path: string
  readonly config: DatasetConfig
  readonly source: Datasource
  readonly params: readonly CompiledParam[]
  readonly statement: PreparedStatement
  /** The key columns for paging: configured, or the result's first column (learnt on first use). */
  key: readonly string[] | null
  /** The result's columns as last seen (for `_schema` without a query). */
  columns: readonly Column[] | null
}

export function compileDataset(id: string, path: string, config: DatasetConfig, source: Datasource): DatasetRoute {
  const pathParams = new Set((path.match(/:[A-Za-z_][A-Za-z0-9_]*/g) ?? []).map((p) => p.slice(1)))
  return {
    id,
    path,
    config,
    source,
    params: compileParams(config.params, pathParams),
    statement: prepareStatement(config.sql, source.type),
    key: config.key ?? null,
    columns: null,
  }
}

export function datasetBackend(dataset: DatasetRoute): Backend {
  return {
    upstream: `dataset:${dataset.source.name}`,
    serve: (ctx, exchange) => serveDataset(ctx, dataset, exchange),
  }
}

/** GET <path>/_schema: the columns as JSON Schema, masks applied for this caller. */
export function datasetSchemaBackend(dataset: DatasetRoute): Backend {
  return {
    upstream: `dataset:${dataset.source.name}`,
    async serve(ctx, exchange) {
      const served = nothingServed()
      let columns: readonly Column[]
      try {
        const described = dataset.columns ?? await whileThere(ctx.res, (signal) => dataset.source.describe(dataset.statement.text, dataset.statement.slots.length, signal))
        if (described === GONE) return served
        columns = dataset.columns = described
      } catch (err) {
        if (!(err instanceof GatewayError)) throw err
        served.error = err // recorded with the upstream, as serveDataset's
        return served
      }
      const masks = masksFor(dataset.config.masks, columns, ctx.roles)
      const body = JSON.stringify(columnsSchema(dataset, maskedColumns(columns, masks), masks))
      served.masked = maskedNames(columns, masks)
      return sendWhole(ctx, exchange, 200, { 'content-type': 'application/schema+json', 'cache-control': 'no-store' }, body, served)
    },
  }
}

/**
 * A refusal or failure before the head comes back in `served.error`, as a function's does: the
 * pipeline records `served` (the record's `upstream` is `dataset:SOURCE`) before answering it. Thrown,
 * a 504 or a 502 with the database down was recorded with no upstream (found by a probe).
 */
async function serveDataset(ctx: Readonly<RequestContext>, dataset: DatasetRoute, exchange: Exchange): Promise<Served> {
  const served = nothingServed()
  try {
    return await queryDataset(ctx, dataset, exchange, served)
  } catch (err) {
    if (!(err instanceof GatewayError) || ctx.res.headersSent) throw err
    served.error = err
    return served
  }
}

async function queryDataset(ctx: Readonly<RequestContext>, dataset: DatasetRoute, exchange: Exchange, served: Served): Promise<Served> {
  const { config, source } = dataset
  const query = readQuery(ctx.query)
  const format = chooseFormat(query.get('format'), headerOf(ctx, 'accept'))
  const fresh = readParams(dataset.params, query, ctx.params, RESERVED_QUERY, Date.now())
  const paging = config.page_size !== undefined
  const limit = paging ? Math.min(config.page_size as number, config.max_rows) : config.max_rows
  const cursorText = query.get('cursor')
  if (!paging && cursorText !== null) throw new GatewayError('invalid_parameter', { detail: 'Parameter "cursor": this dataset does not page (no page_size).' })
  let key: readonly string[] = []
  if (paging) {
    if (dataset.key === null) {
      const first = await whileThere(ctx.res, (signal) => firstColumn(dataset, signal))
      if (first === GONE) return served
      dataset.key = [first]
    }
    key = dataset.key
  }
  const scope = paging ? cursorScope(dataset, key, query, ctx.params, ctx.identity, ctx.roles) : ''
  const position = paging && cursorText !== null && cursorText !== '' ? verifyCursor(cursorText, scope, source.key) : null
  const after = position?.after ?? null
  // A later page binds what the first page did: the same window for `since=-12h`, a minute later.
  const params: ReadonlyMap<string, ParamValue> = position?.params ? new Map([...fresh, ...position.params]) : fresh

  const values = bindValues(dataset.statement, params, ctx.identity, ctx.roles, source.type)
  let text = dataset.statement.text
  let bound = values
  if (paging) {
    const page: Paging = { key, after, fetch: limit + 1 }
    ;({ text, values: bound } = pagedStatement(dataset.statement, values, page, source.type))
  }

  const started = performance.now()
  const parameterNames = dataset.statement.slots.map((slot) => (slot.kind === 'param' ? slot.name : null))
  const rows = await whileThere(ctx.res, (signal) => source.open({ text, values: bound, timeoutMs: config.timeout, requestId: ctx.id, traceId: ctx.trace?.traceId ?? null, parameterNames, signal }))
  if (rows === GONE) return served
  return stream(ctx, dataset, exchange, served, rows, { format, limit, paging, key, scope, params, started, unpaged: { text: dataset.statement.text, values } })
}

const GONE = Symbol('the client went')

/**
 * `work` (a query opened, a statement described) with a signal that aborts when the client goes, or
 * a SIGTERM's drain cuts it, before the answer is done; GONE then. Over a database that stopped
 * answering the wait went on to the dataset's timeout + 5 s (or, describing, until TCP gave up):
 * cut by a SIGTERM's drain, the request outlived the audit log and its record was lost (an
 * adversarial probe). GONE, the pipeline records it as cut (499).
 */
async function whileThere<T>(res: ServerResponse, work: (signal: AbortSignal) => Promise<T>): Promise<T | typeof GONE> {
  const gone = new AbortController()
  const onClose = () => {
    if (!res.writableFinished) gone.abort()
  }
  if (res.destroyed) onClose()
  res.once('close', onClose)
  try {
    return await work(gone.signal)
  } catch (err) {
    if (gone.signal.aborted) return GONE
    throw err
  } finally {
    res.removeListener('close', onClose)
  }
}

interface StreamPlan {
  format: ReturnType<typeof chooseFormat>
  limit: number
  paging: boolean
  key: readonly string[]
  scope: string
  params: ReadonlyMap<string, ParamValue>
  started: number
  /** The statement and its values before paging wrapped them: where the database judges a tie. */
  unpaged: { text: string; values: readonly unknown[] }
}

async function stream(ctx: Readonly<RequestContext>, dataset: DatasetRoute, exchange: Exchange, served: Served, source: RowSource, plan: StreamPlan): Promise<Served> {
  const { res } = ctx
  let gone = false
  const onClose = () => {
    if (!res.writableFinished) {
      gone = true
      source.abort()
    }
  }
  if (res.destroyed) {
    // It left while the query was being opened (waiting for a connection, BEGIN): its 'close' came
    // before any listener, and the connection was kept in its transaction for good.
    source.abort()
    return served
  }
  res.once('close', onClose)
  try {
    let sent = 0
    let more = false
    // The last row's key values as read, before its masks are applied in place (a masked key would
    // send the next page back to the start).
    let lastKey: KeyValue[] | null = null
    // Where the page ends: page_size (or max_rows), or sooner where an HTTP/1.0 answer is full.
    let limit = plan.limit
    // The first batch before the head: a failing statement is still a clean 502/504, and a small
    // result's paging facts go in headers, where a spreadsheet import can see them.
    let read = await readBatch(source, Math.min(BATCH_ROWS, limit + 1))
    let batch = read.rows
    served.upstreamMs = performance.now() - plan.started
    const columns = source.columns
    if (dataset.columns === null && columns.length > 0) dataset.columns = columns
    const masks = masksFor(dataset.config.masks, columns, ctx.roles)
    served.masked = maskedNames(columns, masks)
    const keyIndexes = plan.key.map((name) => keyIndex(columns, name))
    const writer = await createWriter(plan.format, maskedColumns(columns, masks))
    let exhausted = read.exhausted

    const keyOf = (row: Row) => keyIndexes.map((i) => keyValue(row[i] ?? null, columns[i]))
    const sameInDatabase = async (a: readonly KeyValue[], b: readonly KeyValue[]) => source.sameKeyByCollation
      ? await source.sameKeyByCollation(plan.unpaged, plan.key, a, b)
      : (dataset.source.sameKeyByCollation?.(plan.unpaged, plan.key, a, b, { requestId: ctx.id, traceId: ctx.trace?.traceId ?? null }) ?? false)
    const take = async (rows: Row[]): Promise<Row[]> => {
      if (plan.paging) refuseNullKeys(rows, keyIndexes, columns) // the one row past the page too
      if (sent + rows.length > limit) {
        more = true
        const kept = limit - sent
        // The page's last row may have come in the batch before (its key then in lastKey, unmasked).
        // No read is in flight here, nor follows: the row past the page was the last one needed.
        if (plan.paging) await refuseTie(kept > 0 ? keyOf(rows[kept - 1] as Row) : lastKey, keyOf(rows[kept] as Row), plan.key, keyIndexes.map((i) => columns[i]?.kind === 'decimal'), sameInDatabase)
        rows = rows.slice(0, kept)
      }
      sent += rows.length
      if (rows.length > 0 && plan.paging) lastKey = keyOf(rows[rows.length - 1] as Row)
      return rows
    }
    const ending = (): Ending => {
      const next = plan.paging && more && lastKey !== null ? signCursor({ after: lastKey, params: timeParams(dataset, plan.params) }, plan.scope, dataset.source.key) : null
      return { next, truncated: more && !plan.paging }
    }

    let first = await take(batch)
    if (ctx.method !== 'HEAD' && !carriesTrailers(ctx)) {
      // Not chunked (HTTP/1.0): the answer ends where the connection closes, so a stream cut by a
      // failure read as a whole page, and it carries no trailers: a CSV, NDJSON or Arrow page longer
      // than one batch had no cursor to go on with (a probe). So it is read whole before its head, up
      // to WHOLE_ANSWER_BYTES, and goes with a Content-Length and its paging facts in headers; a
      // failure is a clean 502. A longer page ends where that is full, its cursor going on from there;
      // a longer unpaged result is cut there, as max_rows cuts it, and says `truncated`.
      const parts: Array<string | Uint8Array> = [writer.start()]
      let size = byteLength(parts[0] as string | Uint8Array)
      for (;;) {
        applyMasks(first, masks, dataset.source.key)
        const chunk = writer.rows(first)
        parts.push(chunk)
        size += byteLength(chunk)
        if (exhausted || more) break
        if (size >= WHOLE_ANSWER_BYTES) limit = sent // the row read next is past the page: whether there are more, and a tie
        read = await readBatch(source, size >= WHOLE_ANSWER_BYTES ? 1 : BATCH_ROWS)
        if (gone) return served
        exhausted = read.exhausted
        first = await take(read.rows)
      }
      await source.close()
      const end = ending()
      parts.push(writer.end(end))
      const headers: Record<string, string> = { 'content-type': CONTENT_TYPES[plan.format], 'cache-control': 'no-store', 'bouncer-truncated': String(end.truncated) }
      if (end.next !== null) headers['bouncer-next-cursor'] = end.next
      served.upstreamStatus = 200
      return await sendWhole(ctx, exchange, 200, headers, Buffer.concat(parts.map((part) => (typeof part === 'string' ? Buffer.from(part) : part))), served)
    }
    const knownAtHead = exhausted || more
    const headers: Record<string, string> = { 'content-type': CONTENT_TYPES[plan.format], 'cache-control': 'no-store', 'x-request-id': ctx.id }
    if (knownAtHead) {
      const end = ending()
      if (end.next !== null) headers['bouncer-next-cursor'] = end.next
      headers['bouncer-truncated'] = String(end.truncated)
    } else if (carriesTrailers(ctx)) {
      headers.trailer = 'Bouncer-Next-Cursor, Bouncer-Truncated'
    }
    if (exchange.lifecycle.draining) res.shouldKeepAlive = false
    served.status = 200
    served.upstreamStatus = 200
    res.writeHead(200, headers)
    if (ctx.method === 'HEAD') {
      await source.close()
      if (exchange.beforeEnd) await exchange.beforeEnd(served)
      res.end()
      return served
    }
    if (!(await send(res, writer.start(), served))) return served

    for (;;) {
      // The next batch is asked for before this one is written: the database produces it while the
      // client takes this one. One batch ahead at most, so memory stays bounded and a client that
      // stops reading still stops the cursor.
      const ahead = exhausted || more ? null : readBatch(source, BATCH_ROWS)
      ahead?.catch(() => {}) // a client that goes meanwhile aborts it: handled where it is awaited
      applyMasks(first, masks, dataset.source.key)
      if (!(await send(res, writer.rows(first), served))) return served
      if (ahead === null) break
      read = await ahead
      if (gone) return served
      batch = read.rows
      exhausted = read.exhausted
      first = await take(batch)
      if (first.length === 0) break
    }
    await source.close()
    const end = ending()
    const tail = writer.end(end)
    if (exchange.beforeEnd) await exchange.beforeEnd(served)
    if (!knownAtHead && carriesTrailers(ctx)) {
      const trailers: Record<string, string> = { 'bouncer-truncated': String(end.truncated) }
      if (end.next !== null) trailers['bouncer-next-cursor'] = end.next
      res.addTrailers(trailers)
    }
    served.bytesOut += byteLength(tail)
    res.end(tail)
    return served
  } catch (err) {
    source.abort()
    if (gone) return served
    served.upstreamMs ??= performance.now() - plan.started // the statement was sent, and failed
    const error = err instanceof GatewayError ? err : new GatewayError('datasource_error', { detail: `Datasource "${dataset.source.name}" failed mid-query.`, cause: err })
    if (!res.headersSent) throw error
    // The status is on the wire: cut the connection, so the client sees an incomplete response.
    served.error = error
    cutShort(res)
    return served
  } finally {
    res.removeListener('close', onClose)
  }
}

/**
 * Up to `max` rows, and fewer once their cells hold BATCH_CHARS: read a few first, then as many more
 * as the rows so far say fit. `exhausted`: the result has no more rows.
 */
async function readBatch(source: RowSource, max: number): Promise<{ rows: Row[]; exhausted: boolean }> {
  let rows: Row[] = []
  let chars = 0
  let want = Math.min(max, FIRST_READ_ROWS)
  for (;;) {
    const got = await source.read(want)
    rows = rows.length === 0 ? got : rows.concat(got)
    if (got.length < want) return { rows, exhausted: true }
    for (const row of got) for (const cell of row) chars += cell === null ? 0 : cell.length
    if (rows.length >= max || chars >= BATCH_CHARS) return { rows, exhausted: false }
    const perRow = Math.max(1, chars / rows.length)
    want = Math.max(1, Math.min(max - rows.length, Math.floor((BATCH_CHARS - chars) / perRow)))
  }
}

/**
 * Whether the answer can end with trailers: chunked (HTTP/1.1) or HTTP/2, and with a body. An
 * HTTP/1.0 client's is not chunked, nor is a HEAD's, and Node refuses a Trailer field there: such a
 * long page was a 502 datasource_error (a probe). An HTTP/1.0 GET is answered whole instead; a
 * HEAD's head goes without them.
 */
function carriesTrailers(ctx: Readonly<RequestContext>): boolean {
  return ctx.method !== 'HEAD' && (ctx.res as { useChunkedEncodingByDefault?: boolean }).useChunkedEncodingByDefault !== false
}

/** Writes one chunk; waits while the client's buffer is full. False when the client has gone. */
async function send(res: ServerResponse, chunk: string | Uint8Array, served: Served): Promise<boolean> {
  const size = byteLength(chunk)
  if (size === 0) return !res.destroyed
  served.bytesOut += size
  return res.write(chunk) || drainedOrClosed(res)
}

function byteLength(chunk: string | Uint8Array): number {
  return typeof chunk === 'string' ? Buffer.byteLength(chunk) : chunk.byteLength
}

/**
 * The result column a paging key names. SQLite reads names case folded, so `key: ID` pages by its
 * `id` column, but only the exact name was looked for here: every row's key read as missing, and
 * the first page was refused as 'two rows hold the same paging key' (an adversarial probe). A key
 * the result lacks is said so, before the head.
 */
function keyIndex(columns: readonly Column[], name: string): number {
  const exact = columns.findIndex((column) => column.name === name)
  if (exact !== -1) return exact
  const folded = name.toLowerCase()
  const index = columns.findIndex((column) => column.name.toLowerCase() === folded)
  if (index === -1) throw new GatewayError('datasource_error', { detail: `The paging key column "${name}" is not one of the result's columns (datasets key).` })
  return index
}

/**
 * A row whose key is NULL cannot be paged to: `(key) > (last)` is never true of it, so it was left
 * out without a word (found by an adversarial probe). SQLite sorts NULL first: such rows refuse the
 * first page. PostgreSQL sorts them last: they refuse the page that reaches them, and every later
 * page also asks for one (pagedStatement), so a page after the first cannot step over them.
 * NULLS FIRST would catch them on page one, but no ordinary index serves that order.
 */
function refuseNullKeys(rows: readonly Row[], keyIndexes: readonly number[], columns: readonly Column[]): void {
  for (const row of rows) {
    for (const i of keyIndexes) {
      if (row[i] === null) throw new GatewayError('datasource_error', { detail: `The paging key column "${(columns[i] as Column).name}" holds NULL in a row, which paging cannot reach: page by NOT NULL columns (datasets key).` })
    }
  }
}

/**
 * The next page starts after the page's last key: a row past the page with that same key would be
 * skipped, and paging went on to the end without it (found by a probe: 30 of 40 rows, 200 every
 * time). The default key is whatever the first column is, so ties are an easy mistake. Only a tie
 * across the page's end loses a row, and the row past it is read anyway: that tie is refused, before
 * the head when the page fits the first batch, else by a cut stream, as for a NULL key.
 */
async function refuseTie(last: readonly KeyValue[] | null, past: readonly KeyValue[], key: readonly string[], decimal: readonly boolean[], sameInDatabase: (a: readonly KeyValue[], b: readonly KeyValue[]) => Promise<boolean>): Promise<void> {
  if (last === null) return
  // Text that differs may still be one key to the database: SQLite's `COLLATE NOCASE` holds `Bob`
  // and `bob` as one, and the next page skipped `bob` (an adversarial probe); PostgreSQL's citext
  // and nondeterministic collations too, and intervals ('1 day' = '24:00:00').
  if (!past.every((value, j) => sameKey(value, last[j] as KeyValue, decimal[j] === true)) && !(await sameInDatabase(last, past))) return
  const names = key.map((name) => `"${name}"`).join(', ')
  throw new GatewayError('datasource_error', { detail: `Two rows hold the same paging key (${names}) where a page ends, so the next page would leave rows out: page by columns unique together (datasets key).` })
}

/** NaN equals NaN as the databases sort it (PostgreSQL: NaN = NaN); -0 equals 0. */
function sameKey(a: KeyValue, b: KeyValue, decimal: boolean): boolean {
  if (a === b) return true
  if (Buffer.isBuffer(a) && Buffer.isBuffer(b)) return a.equals(b)
  if (typeof a === 'number' && typeof b === 'number') return Number.isNaN(a) && Number.isNaN(b)
  // A numeric key keeps its text (the cursor binds it exactly), and PostgreSQL says 1.0 = 1.00.
  return decimal && typeof a === 'string' && typeof b === 'string' && decimalText(a) === decimalText(b)
}

/** A numeric's text without the fraction's trailing zeros, and -0 as 0: one text for one value. */
function decimalText(text: string): string {
  const trimmed = text.includes('.') ? text.replace(/\.?0+$/, '') : text
  return trimmed === '-0' ? '0' : trimmed
}

/**
 * A key value as the cursor keeps it: numbers as numbers (SQLite compares them so), the rest as text.
 * An integer past 2^53 is a bigint: as text, SQLite put it after every integer where the key has no
 * column affinity (an expression: `id + 0`), so the page after one ended on such a key was
 * empty and the rest of the rows were lost without a word (an adversarial probe).
 */
function keyValue(cell: string | null, column: Column | undefined): KeyValue {
  if (cell === null) return ''
  if (column && (column.kind === 'int' || column.kind === 'number' || (column.kind === 'bigint' && Number.isSafeInteger(Number(cell))))) return Number(cell)
  if (column?.kind === 'bigint' && INTEGER_TEXT.test(cell)) return BigInt(cell)
  // Bytes as bytes: as text, SQLite put every BLOB after it, and the page after the first was the
  // first again, for good (a BI tool paging on never ended; an adversarial probe).
  if (column?.kind === 'bytes' && cell.startsWith('\\x')) return Buffer.from(cell.slice(2), 'hex')
  return cell
}

const INTEGER_TEXT = /^-?\d+$/

/**
 * What a cursor is good for: this dataset, these parameters as the request gives them, and this
 * caller. Without the caller, a cursor taken to another tenant's caller (a statement filtered by
 * `:claims.tenant`) paged on from where the first tenant's rows stopped, which tells where its
 * hidden key values lie (found by an adversarial probe). The caller is its issuer and subject, and
 * what the statement binds from it: one person with two tokens (an `org_id` claim of each org, two
 * API keys) carried a cursor from one org's rows to the other's (a probe). The parameters' text, not
 * their values: `since=-12h` is the same request a minute later, though another instant (the cursor
 * keeps the first page's values). And the paging key's columns: a reload that pages by others
 * took a cursor's `id` as the new key's value, and paged on from the wrong place whenever the two
 * keys had as many columns (only a count was compared).
 */
function cursorScope(dataset: DatasetRoute, key: readonly string[], query: URLSearchParams, pathValues: Readonly<Record<string, string>>, identity: Identity | null, roles: readonly string[]): string {
  const given = dataset.params.map((param) => [param.name, param.fromPath ? (pathValues[param.name] ?? null) : query.getAll(param.name)] as const)
  const caller = identity === null ? null : [identity.iss, identity.sub, callerValues(dataset.statement, identity, roles, dataset.source.type)]
  return JSON.stringify([dataset.id, key, given.sort(([a], [b]) => (a < b ? -1 : 1)), caller])
}

/**
 * The values a later page must bind as the first did: dates and timestamps (`-12h`, `now`, `today`
 * are instants of the first page). Only those: a list of 500 ids sealed too would take the next
 * page's URL past max_header_bytes.
 */
function timeParams(dataset: DatasetRoute, params: ReadonlyMap<string, ParamValue>): Array<[string, ParamValue]> {
  return dataset.params.filter((param) => param.config.type === 'date' || param.config.type === 'timestamp').map((param) => [param.name, params.get(param.name) ?? null])
}

async function firstColumn(dataset: DatasetRoute, signal: AbortSignal): Promise<string> {
  const columns = dataset.columns ?? (dataset.columns = await dataset.source.describe(dataset.statement.text, dataset.statement.slots.length, signal))
  const first = columns[0]
  if (first === undefined) throw new GatewayError('datasource_error', { detail: 'The dataset\'s statement returns no columns to page by.' })
  return first.name
}

function maskedNames(columns: readonly Column[], masks: ReturnType<typeof masksFor>): string | null {
  return masks.length === 0 ? null : masks.map((mask) => (columns[mask.index] as Column).name).join(',')
}

function headerOf(ctx: Readonly<RequestContext>, name: string): string | undefined {
  const value = ctx.req.headers[name]
  return Array.isArray(value) ? value.join(',') : value
}
