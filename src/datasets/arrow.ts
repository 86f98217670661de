// The Apache Arrow IPC stream writer (formats.ts loads it on the first Arrow answer).
import { AsyncByteQueue, Binary, Bool, DateDay, Field, Float64, Int32, Int64, makeBuilder, makeData, RecordBatch, RecordBatchStreamWriter, Schema, Struct, TimestampMillisecond, Utf8, type Data, type DataType } from 'apache-arrow'
import type { FormatWriter } from './formats.ts'
import type { Cell, Column, ColumnKind, Row } from './source.ts'

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

const INTEGER = /^[-+]?\d+$/

/**
 * An int64 cell, or null when the text is no integer: SQLite keeps any value in an INTEGER column
 * (1.5, or text), and BigInt threw mid-answer, cutting the Arrow stream (found by an adversarial
 * probe). The JSON writer sends such a value as a string, CSV as quoted text.
 */
function bigintOf(text: string): bigint | null {
  return INTEGER.test(text) ? BigInt(text) : null
}

/**
 * Whether `value`, Number(text), is the number `text` holds. SQLite keeps any text in a REAL or
 * NUMERIC column, and Number() read `''` (or spaces) as 0 and `abc` as NaN: values the database
 * does not hold (an adversarial probe). Such text is null, as bigintOf's. Two comparisons for a
 * common number; a regular expression for a zero only.
 */
function isFloatText(text: string, value: number): boolean {
  if (value !== value) return text === 'NaN'
  return value !== 0 || ZERO.test(text)
}

const ZERO = /^[-+]?(0+(\.0*)?|\.0+)([eE][-+]?\d+)?$/

function arrowValue(kind: ColumnKind): (text: string) => ArrowValue {
  switch (kind) {
    case 'int':
    case 'number':
    case 'decimal':
      return Number
    case 'bigint':
      return bigintOf
    case 'bool':
      // Text SQLite holds in a BOOLEAN column ('true', 'yes') is no Bool: null, as bigintOf's.
      return (text) => (text === 't' ? true : text === 'f' ? false : null)
    case 'bytes':
      return (text) => (text.startsWith('\\x') ? Buffer.from(text.slice(2), 'hex') : Buffer.from(text))
    default:
      return (text) => text
  }
}

export function arrowWriter(columns: readonly Column[]): FormatWriter {
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
      const batch = new RecordBatch(schema, makeData({ type: struct, length: rows.length, nullCount: 0, children }))
      // RecordBatch merges its schema's fields by name (Schema#assign): two columns of one name and
      // different types (a join's two `status`) made the batch's schema another than the stream's,
      // and the writer ended the stream before it, an answer with no rows (an adversarial probe).
      // The children are the columns in order, as the stream's schema says them.
      ;(batch as { schema: Schema }).schema = schema
      writer.write(batch)
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
        const value = cell === null ? null : bigintOf(cell)
        if (valid(i, value === null ? null : cell)) data[i] = value as bigint
      }
      return makeData({ type: new Int64(), length, nullCount, nullBitmap: validity, data })
    }
    case 'number':
    case 'decimal': {
      const data = new Float64Array(length)
      for (let i = 0; i < length; i++) {
        const cell = (rows[i] as Row)[index] as Cell
        const value = cell === null ? NaN : Number(cell)
        if (valid(i, cell === null || !isFloatText(cell, value) ? null : cell)) data[i] = value
      }
      return makeData({ type: new Float64(), length, nullCount, nullBitmap: validity, data })
    }
    case 'date': {
      const data = new Int32Array(length)
      const instant: Instant = { days: 0, ms: 0, date: 0 }
      for (let i = 0; i < length; i++) {
        const cell = (rows[i] as Row)[index] as Cell
        const days = cell === null ? null : dayOf(cell, instant)
        if (valid(i, days === null ? null : cell)) data[i] = days as number
      }
      return makeData({ type: new DateDay(), length, nullCount, nullBitmap: validity, data })
    }
    case 'timestamp':
    case 'timestamptz': {
      const data = new BigInt64Array(length)
      // Two 32-bit words per value, written from a number: a BigInt per cell would allocate.
      const words = new Int32Array(data.buffer)
      const instant: Instant = { days: 0, ms: 0, date: 0 }
      for (let i = 0; i < length; i++) {
        const cell = (rows[i] as Row)[index] as Cell
        let read = cell === null ? NOT_READ : readTimestamp(cell, instant)
        if (read === NOT_READ && cell !== null) read = parsedTimestamp(cell, instant)
        if (!valid(i, read === NOT_READ ? null : cell)) continue
        if (read === INFINITY) data[i] = INT64_MAX
        else if (read === MINUS_INFINITY) data[i] = INT64_MIN
        else {
          const ms = instant.days * 86_400_000 + instant.ms
          if (Number.isSafeInteger(ms)) {
            const high = Math.floor(ms / 4_294_967_296)
            words[2 * i] = ms - high * 4_294_967_296
            words[2 * i + 1] = high
          } else {
            data[i] = BigInt(instant.days) * 86_400_000n + BigInt(instant.ms) // beyond ±285,000 years
          }
        }
      }
      return makeData({ type: new TimestampMillisecond(kind === 'timestamptz' ? 'UTC' : null), length, nullCount, nullBitmap: validity, data })
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


// --- dates and timestamps ---------------------------------------------------------------------
// PostgreSQL's text (`2026-01-31 12:34:56.789012+00`, `0044-03-15 BC`, `10000-01-01`, `infinity`)
// read by hand: Date.parse reads no BC and no five-digit year, and those came out wrong or null.
// Arrow has no infinity: it is the type's largest value and -infinity its smallest, as in
// PostgreSQL's own binary format (and DuckDB's). Both calendars are the proleptic Gregorian.

const INT32_MAX = 2_147_483_647
const INT32_MIN = -2_147_483_648
const INT64_MAX = 9_223_372_036_854_775_807n
const INT64_MIN = -9_223_372_036_854_775_808n

const NOT_READ = 0
const FINITE = 1
const INFINITY = 2
const MINUS_INFINITY = 3

/** What readTimestamp read: days since 1970-01-01 and milliseconds into that day (UTC when the text had a zone), and the date as written. */
interface Instant {
  days: number
  ms: number
  date: number
}

/**
 * A date's days since 1970-01-01 (Date32), or null when the text is no date in Date32's range
 * (SQLite keeps any text). A time after it, in SQLite's text, is not part of the date.
 */
function dayOf(text: string, instant: Instant): number | null {
  switch (readTimestamp(text, instant)) {
    case FINITE:
      return instant.date >= INT32_MIN && instant.date <= INT32_MAX ? instant.date : null
    case INFINITY:
      return INT32_MAX
    case MINUS_INFINITY:
      return INT32_MIN
    default: {
      const ms = Date.parse(text.slice(0, 10)) // other text SQLite holds, read as before
      return Number.isNaN(ms) ? null : Math.floor(ms / 86_400_000)
    }
  }
}

/**
 * `Y{4,}-MM-DD[( |T)HH:MM[:SS[.f]]][Z|±HH[:MM[:SS]]][ BC]` into `instant`: PostgreSQL's form, and
 * the ISO text SQLite is usually given; NOT_READ for other text.
 */
function readTimestamp(text: string, instant: Instant): number {
  if (text === 'infinity') return INFINITY
  if (text === '-infinity') return MINUS_INFINITY
  const n = text.length
  let i = 0
  let year = 0
  while (i < n && isDigit(text.charCodeAt(i))) year = year * 10 + text.charCodeAt(i++) - 48
  // PostgreSQL's years have 4 to 7 digits (5874897 AD is its last date).
  if (i < 4 || i > 7 || text.charCodeAt(i) !== 45 || !twoDigits(text, i + 1) || text.charCodeAt(i + 3) !== 45 || !twoDigits(text, i + 4)) return NOT_READ
  const month = number2(text, i + 1)
  const day = number2(text, i + 4)
  i += 6
  let ms = 0
  const sep = text.charCodeAt(i)
  if ((sep === 32 || sep === 84) && twoDigits(text, i + 1)) {
    if (text.charCodeAt(i + 3) !== 58 || !twoDigits(text, i + 4)) return NOT_READ
    ms = number2(text, i + 1) * 3_600_000 + number2(text, i + 4) * 60_000
    i += 6
    if (text.charCodeAt(i) === 58 && twoDigits(text, i + 1)) {
      ms += number2(text, i + 1) * 1000
      i += 3
      if (text.charCodeAt(i) === 46) {
        // Milliseconds: the microseconds are cut, toward the earlier instant.
        let scale = 100
        for (i++; i < n && isDigit(text.charCodeAt(i)); i++, scale /= 10) if (scale >= 1) ms += (text.charCodeAt(i) - 48) * scale
      }
    }
    const sign = text.charCodeAt(i)
    if (sign === 90) i++ // Z
    else if ((sign === 43 || sign === 45) && twoDigits(text, i + 1)) {
      // An offset: the instant is UTC. PostgreSQL's session is UTC (+00); LMT offsets have seconds.
      let offset = number2(text, i + 1) * 3_600_000
      i += 3
      if (text.charCodeAt(i) === 58 && twoDigits(text, i + 1)) {
        offset += number2(text, i + 1) * 60_000
        i += 3
        if (text.charCodeAt(i) === 58 && twoDigits(text, i + 1)) {
          offset += number2(text, i + 1) * 1000
          i += 3
        }
      }
      ms -= sign === 43 ? offset : -offset
    }
  }
  if (i === n - 3 && text.endsWith(' BC')) {
    year = 1 - year
    i = n
  }
  if (i !== n || month < 1 || month > 12 || day < 1 || day > 31) return NOT_READ
  instant.date = daysFromCivil(year, month, day)
  instant.days = instant.date + Math.floor(ms / 86_400_000)
  instant.ms = ms - Math.floor(ms / 86_400_000) * 86_400_000
  return FINITE
}

/** Other text SQLite holds (`2026-01-31T12:00:00+0200`): Date.parse, with no zone read as UTC. */
function parsedTimestamp(text: string, instant: Instant): number {
  const ms = Date.parse(/[Zz]|[+-]\d\d:?\d\d$/.test(text) ? text : `${text}Z`)
  if (Number.isNaN(ms)) return NOT_READ
  instant.days = Math.floor(ms / 86_400_000)
  instant.ms = ms - instant.days * 86_400_000
  return FINITE
}

/** Days since 1970-01-01 of a proleptic Gregorian date, year 0 being 1 BC (Howard Hinnant's days_from_civil). */
function daysFromCivil(year: number, month: number, day: number): number {
  const y = month <= 2 ? year - 1 : year
  const era = Math.floor(y / 400)
  const yearOfEra = y - era * 400
  const dayOfYear = Math.floor((153 * (month > 2 ? month - 3 : month + 9) + 2) / 5) + day - 1
  return era * 146_097 + yearOfEra * 365 + Math.floor(yearOfEra / 4) - Math.floor(yearOfEra / 100) + dayOfYear - 719_468
}

function isDigit(c: number): boolean {
  return c >= 48 && c <= 57
}

function twoDigits(text: string, at: number): boolean {
  return isDigit(text.charCodeAt(at)) && isDigit(text.charCodeAt(at + 1))
}

function number2(text: string, at: number): number {
  return (text.charCodeAt(at) - 48) * 10 + text.charCodeAt(at + 1) - 48
}
