// The Apache Arrow IPC stream writer (formats.ts loads it on the first Arrow answer).
import { AsyncByteQueue, Binary, Bool, DateDay, Field, Float64, Int32, Int64, makeBuilder, makeData, RecordBatch, RecordBatchStreamWriter, Schema, Struct, TimestampMillisecond, Utf8, type Data, type DataType } from 'apache-arrow'
import { isoTimestamp, type FormatWriter } from './formats.ts'
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

function arrowValue(kind: ColumnKind): (text: string) => ArrowValue {
  switch (kind) {
    case 'int':
    case 'number':
    case 'decimal':
      return Number
    case 'bigint':
      return bigintOf
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

