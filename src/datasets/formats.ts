// The four answers a dataset gives, chosen by `?format=` or Accept: JSON (`{"rows": [...], "next":
// …}`), NDJSON, CSV (RFC 4180: CRLF, a header row, quotes doubled) and the Apache Arrow IPC stream.
// Each writer turns one batch of rows (cells in PostgreSQL's text format) into one chunk, so the
// gateway holds one batch at a time, whatever the result's size.
import { AsyncByteQueue, Binary, Bool, DateDay, Field, Float64, Int32, Int64, makeBuilder, makeData, RecordBatch, RecordBatchStreamWriter, Schema, Struct, TimestampMillisecond, Utf8, type Data, type DataType } from 'apache-arrow'
import { invalidParameter } from './params.ts'
import type { Cell, Column, ColumnKind, Row } from './source.ts'

export const FORMATS = ['json', 'ndjson', 'csv', 'arrow'] as const
export type Format = (typeof FORMATS)[number]

export const CONTENT_TYPES: Record<Format, string> = {
  json: 'application/json',
  ndjson: 'application/x-ndjson',
  csv: 'text/csv; charset=utf-8; header=present',
  arrow: 'application/vnd.apache.arrow.stream',
}

const BY_MEDIA_TYPE = new Map<string, Format>([
  ['application/json', 'json'],
  ['application/x-ndjson', 'ndjson'],
  ['application/ndjson', 'ndjson'],
  ['application/jsonl', 'ndjson'],
  ['text/csv', 'csv'],
  ['application/vnd.apache.arrow.stream', 'arrow'],
])

/** `?format=` first, then the Accept media type with the highest q that we serve; JSON otherwise. */
export function chooseFormat(asked: string | null, accept: string | undefined): Format {
  if (asked !== null) {
    if ((FORMATS as readonly string[]).includes(asked)) return asked as Format
    throw invalidParameter('format', `one of ${FORMATS.join(', ')}`)
  }
  if (accept === undefined) return 'json'
  let best: Format = 'json'
  let bestQ = -1
  for (const part of accept.split(',')) {
    const [type = '', ...parameters] = part.split(';')
    const format = BY_MEDIA_TYPE.get(type.trim().toLowerCase())
    if (format === undefined) continue
    const q = parameters.map((p) => p.trim()).find((p) => p.startsWith('q='))
    const weight = q === undefined ? 1 : Number(q.slice(2))
    if (weight > bestQ) {
      best = format
      bestQ = weight
    }
  }
  return best
}

/** What a writer adds after the last row: the next page's cursor and whether max_rows cut the result. */
export interface Ending {
  next: string | null
  truncated: boolean
}

export interface FormatWriter {
  start(): string | Uint8Array
  rows(rows: readonly Row[]): string | Uint8Array
  end(ending: Ending): string | Uint8Array
}

export function createWriter(format: Format, columns: readonly Column[]): FormatWriter {
  switch (format) {
    case 'json':
      return jsonWriter(columns)
    case 'ndjson':
      return ndjsonWriter(columns)
    case 'csv':
      return csvWriter(columns)
    case 'arrow':
      return arrowWriter(columns)
  }
}

// --- JSON -------------------------------------------------------------------------------------

type Encode = (text: string) => string

const SAFE_DIGITS = /^-?\d{1,15}$/
const JSON_NUMBER = /^-?\d+(\.\d+)?([eE][-+]?\d+)?$/

function jsonEncoder(kind: ColumnKind): Encode {
  switch (kind) {
    case 'int':
      return (text) => text
    case 'bigint':
      // Beyond 2^53 a JSON number loses digits in JavaScript: such a value goes as a string.
      return (text) => (SAFE_DIGITS.test(text) || Number.isSafeInteger(Number(text)) ? text : JSON.stringify(text))
    case 'number':
    case 'decimal':
      return (text) => (JSON_NUMBER.test(text) ? text : 'null') // NaN, Infinity have no JSON form
    case 'bool':
      return (text) => (text === 't' ? 'true' : 'false')
    case 'json':
      return (text) => text
    case 'timestamptz':
      return (text) => JSON.stringify(isoTimestamp(text, true))
    case 'timestamp':
      return (text) => JSON.stringify(isoTimestamp(text, false))
    default:
      return (text) => JSON.stringify(text)
  }
}

function rowObjects(columns: readonly Column[]): (row: Row) => string {
  const keys = columns.map((column, i) => `${i === 0 ? '{' : ','}${JSON.stringify(column.name)}:`)
  const encoders = columns.map((column) => jsonEncoder(column.kind))
  const n = columns.length
  return (row) => {
    let out = ''
    for (let i = 0; i < n; i++) {
      const cell = row[i] as Cell
      out += keys[i] as string
      out += cell === null ? 'null' : (encoders[i] as Encode)(cell)
    }
    return n === 0 ? '{}' : `${out}}`
  }
}

function jsonWriter(columns: readonly Column[]): FormatWriter {
  const object = rowObjects(columns)
  let first = true
  return {
    start: () => '{"rows":[',
    rows(rows) {
      let out = ''
      for (const row of rows) {
        out += first ? object(row) : `,${object(row)}`
        first = false
      }
      return out
    },
    end: (ending) => `],"next":${JSON.stringify(ending.next)},"truncated":${ending.truncated}}`,
  }
}

function ndjsonWriter(columns: readonly Column[]): FormatWriter {
  const object = rowObjects(columns)
  return {
    start: () => '',
    rows(rows) {
      let out = ''
      for (const row of rows) out += `${object(row)}\n`
      return out
    },
    end: () => '',
  }
}

// --- CSV (RFC 4180) ---------------------------------------------------------------------------

const NEEDS_QUOTES = /[",\r\n]/

function csvField(text: string): string {
  return NEEDS_QUOTES.test(text) ? `"${text.replaceAll('"', '""')}"` : text
}

function csvEncoder(kind: ColumnKind): Encode {
  switch (kind) {
    case 'int':
    case 'bigint':
    case 'number':
    case 'decimal':
      return (text) => text
    case 'bool':
      return (text) => (text === 't' ? 'true' : 'false')
    case 'timestamptz':
      return (text) => isoTimestamp(text, true)
    case 'timestamp':
      return (text) => isoTimestamp(text, false)
    default:
      return csvField
  }
}

function csvWriter(columns: readonly Column[]): FormatWriter {
  const encoders = columns.map((column) => csvEncoder(column.kind))
  const n = columns.length
  return {
    start: () => `${columns.map((column) => csvField(column.name)).join(',')}\r\n`,
    rows(rows) {
      let out = ''
      for (const row of rows) {
        for (let i = 0; i < n; i++) {
          const cell = row[i] as Cell
          if (i > 0) out += ','
          if (cell !== null) out += (encoders[i] as Encode)(cell)
        }
        out += '\r\n'
      }
      return out
    },
    end: () => '',
  }
}

// --- Arrow IPC stream -------------------------------------------------------------------------

/** Collects what the Arrow writer emits, so each batch's bytes can be sent as they are made. */
class Chunks extends AsyncByteQueue {
  taken: Uint8Array[] = []
  override write(value: Uint8Array): void {
    this.taken.push(value)
  }
  drain(): Uint8Array {
    const out = this.taken.length === 1 ? (this.taken[0] as Uint8Array) : Buffer.concat(this.taken)
    this.taken = []
    return out
  }
}

function arrowType(kind: ColumnKind): DataType {
  switch (kind) {
    case 'int':
      return new Int32()
    case 'bigint':
      return new Int64()
    case 'number':
    case 'decimal':
      return new Float64()
    case 'bool':
      return new Bool()
    case 'date':
      return new DateDay()
    case 'timestamp':
      return new TimestampMillisecond()
    case 'timestamptz':
      return new TimestampMillisecond('UTC')
    case 'bytes':
      return new Binary()
    default:
      return new Utf8()
  }
}

type ArrowValue = number | bigint | boolean | string | Uint8Array | null

function arrowValue(kind: ColumnKind): (text: string) => ArrowValue {
  switch (kind) {
    case 'int':
    case 'number':
    case 'decimal':
      return Number
    case 'bigint':
      return (text) => BigInt(text)
    case 'bool':
      return (text) => text === 't'
    case 'date':
      return (text) => {
        const ms = Date.parse(text.slice(0, 10))
        return Number.isNaN(ms) ? null : ms
      }
    case 'timestamp':
    case 'timestamptz': {
      const zoned = kind === 'timestamptz'
      return (text) => {
        const iso = isoTimestamp(text, zoned)
        const ms = Date.parse(zoned || /[Zz]|[+-]\d\d:?\d\d$/.test(iso) ? iso : `${iso}Z`)
        return Number.isNaN(ms) ? null : ms
      }
    }
    case 'bytes':
      return (text) => (text.startsWith('\\x') ? Buffer.from(text.slice(2), 'hex') : Buffer.from(text))
    default:
      return (text) => text
  }
}

function arrowWriter(columns: readonly Column[]): FormatWriter {
  const schema = new Schema(columns.map((column) => new Field(column.name, arrowType(column.kind), true)))
  const struct = new Struct(schema.fields)
  const converters = columns.map((column) => arrowValue(column.kind))
  const sink = new Chunks()
  const writer = new RecordBatchStreamWriter()
  return {
    start() {
      writer.reset(sink as never, schema)
      return sink.drain()
    },
    rows(rows) {
      if (rows.length === 0) return ''
      const children = columns.map((column, i) => {
        const fast = fastColumn(column.kind, rows, i)
        if (fast !== null) return fast
        const builder = makeBuilder({ type: arrowType(column.kind), nullValues: [null] })
        const convert = converters[i] as (text: string) => ArrowValue
        for (const row of rows) {
          const cell = row[i] as Cell
          builder.append(cell === null ? null : convert(cell))
        }
        return builder.finish().flush()
      })
      writer.write(new RecordBatch(schema, makeData({ type: struct, length: rows.length, nullCount: 0, children })))
      return sink.drain()
    },
    end() {
      writer.finish()
      return sink.taken.length === 0 ? '' : sink.drain()
    },
  }
}

/**
 * The common kinds built straight into Arrow's buffers (values, validity bitmap, UTF-8 offsets):
 * the generic builders cost about five times as much per cell. Null for the other kinds.
 */
function fastColumn(kind: ColumnKind, rows: readonly Row[], index: number): Data | null {
  const length = rows.length
  const validity = new Uint8Array((length + 7) >> 3)
  let nullCount = 0
  const valid = (i: number, cell: Cell): cell is string => {
    if (cell === null) {
      nullCount++
      return false
    }
    validity[i >> 3] = (validity[i >> 3] as number) | (1 << (i & 7))
    return true
  }
  switch (kind) {
    case 'int': {
      const data = new Int32Array(length)
      for (let i = 0; i < length; i++) {
        const cell = (rows[i] as Row)[index] as Cell
        if (valid(i, cell)) data[i] = Number(cell)
      }
      return makeData({ type: new Int32(), length, nullCount, nullBitmap: validity, data })
    }
    case 'bigint': {
      const data = new BigInt64Array(length)
      for (let i = 0; i < length; i++) {
        const cell = (rows[i] as Row)[index] as Cell
        if (valid(i, cell)) data[i] = BigInt(cell)
      }
      return makeData({ type: new Int64(), length, nullCount, nullBitmap: validity, data })
    }
    case 'number':
    case 'decimal': {
      const data = new Float64Array(length)
      for (let i = 0; i < length; i++) {
        const cell = (rows[i] as Row)[index] as Cell
        if (valid(i, cell)) data[i] = Number(cell)
      }
      return makeData({ type: new Float64(), length, nullCount, nullBitmap: validity, data })
    }
    case 'string':
    case 'json': {
      const offsets = new Int32Array(length + 1)
      let bytes = 0
      for (let i = 0; i < length; i++) {
        const cell = (rows[i] as Row)[index] as Cell
        if (valid(i, cell)) bytes += Buffer.byteLength(cell)
        offsets[i + 1] = bytes
      }
      const data = Buffer.allocUnsafe(bytes)
      for (let i = 0; i < length; i++) {
        const cell = (rows[i] as Row)[index] as Cell
        if (cell !== null) data.write(cell, offsets[i] as number)
      }
      return makeData({ type: new Utf8(), length, nullCount, nullBitmap: validity, valueOffsets: offsets, data })
    }
    default:
      return null
  }
}

// --- shared -----------------------------------------------------------------------------------

/** PostgreSQL's `2026-01-31 12:00:00.5+00` (the session is in UTC) as RFC 3339: `2026-01-31T12:00:00.5Z`. */
export function isoTimestamp(text: string, zoned: boolean): string {
  let out = text.length > 10 && text[10] === ' ' ? `${text.slice(0, 10)}T${text.slice(11)}` : text
  if (zoned && out.endsWith('+00')) out = `${out.slice(0, -3)}Z`
  return out
}
