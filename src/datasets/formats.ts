// The four answers a dataset gives, chosen by `?format=` or Accept: JSON (`{"rows": [...], "next":
// …}`), NDJSON, CSV (RFC 4180: CRLF, a header row, quotes doubled) and the Apache Arrow IPC stream.
// Each writer turns one batch of rows (cells in PostgreSQL's text format) into one chunk, so the
// gateway holds one batch at a time, whatever the result's size.
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

/**
 * `?format=` first, then the Accept media type with the highest q that we serve; JSON otherwise. q=0
 * is "not acceptable" and `Q=` is `q=` (RFC 9110 §12.4.2): `text/csv;q=0` was answered in CSV, and
 * `text/csv;Q=0.1, application/x-ndjson;q=0.5` too, the weight unread (an adversarial probe).
 */
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
    const q = parameters.map((p) => p.trim()).find((p) => p.startsWith('q=') || p.startsWith('Q='))
    const weight = q === undefined ? 1 : Number(q.slice(2))
    if (weight > 0 && weight > bestQ) {
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

/**
 * The writer for one answer. Arrow's writer is loaded on the first Arrow answer: apache-arrow costs
 * ~100 ms and ~24 MB to load, which a gateway that never serves Arrow should not pay at start.
 */
export async function createWriter(format: Format, columns: readonly Column[]): Promise<FormatWriter> {
  switch (format) {
    case 'json':
      return jsonWriter(columns)
    case 'ndjson':
      return ndjsonWriter(columns)
    case 'csv':
      return csvWriter(columns)
    case 'arrow':
      return (await import('./arrow.ts')).arrowWriter(columns)
  }
}

// --- JSON -------------------------------------------------------------------------------------

type Encode = (text: string) => string

// JSON's own grammar (RFC 8259 §6: no leading zeros, no `+`): SQLite keeps any text in a number
// column, and `Number('')`, `Number('0x10')` are safe integers, so `{"n":,` and `{"n":0x10` made
// the whole answer unreadable (an adversarial probe). Such text goes as a string.
const SAFE_DIGITS = /^-?(0|[1-9]\d{0,14})$/
const JSON_INTEGER = /^-?(0|[1-9]\d*)$/
const JSON_NUMBER = /^-?(0|[1-9]\d*)(\.\d+)?([eE][-+]?\d+)?$/
const LINE_BREAKS = /[\r\n]/g

/**
 * Each kind's cell as JSON. A value with no exact JSON number goes as a string rather than null,
 * which is SQL NULL: NaN and ±Infinity (PostgreSQL's spelling), and numbers JavaScript would read
 * back differently. The common values take the first test and allocate nothing more.
 */
function jsonEncoder(kind: ColumnKind): Encode {
  switch (kind) {
    case 'int':
      return (text) => text
    case 'bigint':
      // Beyond 2^53 a JSON number loses digits in JavaScript: such a value goes as a string. A float
      // (SQLite's, in a column its first rows typed as integers) goes as the number it is.
      return (text) => (SAFE_DIGITS.test(text) || (JSON_INTEGER.test(text) ? Number.isSafeInteger(Number(text)) : JSON_NUMBER.test(text)) ? text : JSON.stringify(text))
    case 'number':
      // A float's text is its shortest exact form already: only NaN and ±Infinity are no JSON number.
      return (text) => (JSON_NUMBER.test(text) ? text : JSON.stringify(text))
    case 'decimal':
      return (text) => (JSON_NUMBER.test(text) && decimalFitsDouble(text) ? text : JSON.stringify(text))
    case 'bool':
      // PostgreSQL's t and f; anything else is text SQLite holds in a BOOLEAN column ('true', 'yes'),
      // which read as false (an adversarial probe): it goes as the text it is.
      return (text) => (text === 't' ? 'true' : text === 'f' ? 'false' : JSON.stringify(text))
    case 'json':
      // PostgreSQL's json (not jsonb) keeps its input's whitespace: a line break there split an
      // NDJSON row over two lines (an adversarial probe). Outside a string (where JSON allows none
      // raw) a break is whitespace, so a space is the same value.
      return (text) => (text.includes('\n') || text.includes('\r') ? text.replace(LINE_BREAKS, ' ') : text)
    case 'date':
      return (text) => JSON.stringify(isoDate(text))
    case 'timestamptz':
      return (text) => JSON.stringify(isoTimestamp(text, true))
    case 'timestamp':
      return (text) => JSON.stringify(isoTimestamp(text, false))
    case 'bytes':
      // `_schema` says contentEncoding hex: the digits, without PostgreSQL's `\x` (SQLite's text in a BLOB column is hexed too).
      return (text) => `"${text.startsWith('\\x') ? text.slice(2) : Buffer.from(text).toString('hex')}"`
    default:
      return (text) => JSON.stringify(text)
  }
}

/**
 * Whether JavaScript's JSON.parse gives back this decimal's exact value, the rule int8 follows: an
 * integer up to 2^53 − 1, or at most 15 significant digits (DBL_DIG: any such decimal survives a
 * double) well inside a double's range. A numeric may hold thousands of digits: a string then.
 */
function decimalFitsDouble(text: string): boolean {
  if (text.length <= 15) return true // at most 15 digits, at most 1e15 in size
  let first = -1
  let last = -1
  let point = text.length
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i)
    if (c === 46) point = i
    else if (c < 48 || c > 57) continue
    else if (first === -1 && c === 48) continue
    else {
      if (first === -1) first = i
      // The integer part's zeros count (1e18 is no safe integer); the fraction's trailing ones do not.
      if (point === text.length || c !== 48) last = i
    }
  }
  if (first === -1) return true // zero
  const digits = last - first + 1 - (first < point && point < last ? 1 : 0)
  const magnitude = first < point ? point - first : point - first + 1
  if (magnitude > 300 || magnitude < -300) return false
  if (digits <= 15) return true
  return last < point && Number.isSafeInteger(Number(text))
}

function rowObjects(columns: readonly Column[]): (row: Row) => string {
  const keys = jsonKeys(columns).map((key, i) => `${i === 0 ? '{' : ','}${JSON.stringify(key)}:`)
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

/**
 * Each column's key in a JSON row: its name, and for a later column of a name already there (a
 * join's `o.status` and `c.status`) the name with the first free `_2`, `_3`, …. Each row went as
 * `{"status":1,"status":"gold"}`, and every JSON reader keeps one of the two, so the other column
 * was lost without a word (a probe). `_schema` names them so too; CSV and Arrow keep the names.
 */
export function jsonKeys(columns: readonly Column[]): string[] {
  const taken = new Set(columns.map((column) => column.name))
  if (taken.size === columns.length) return columns.map((column) => column.name)
  const seen = new Set<string>()
  return columns.map(({ name }) => {
    if (!seen.has(name)) {
      seen.add(name)
      return name
    }
    let n = 2
    while (taken.has(`${name}_${n}`)) n++
    taken.add(`${name}_${n}`)
    return `${name}_${n}`
  })
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

/** An empty string is `""` and NULL an empty field, as PostgreSQL's CSV: a reader tells them apart. */
function csvField(text: string): string {
  if (text.length === 0) return '""'
  return NEEDS_QUOTES.test(text) ? `"${text.replaceAll('"', '""')}"` : text
}

/** A number as PostgreSQL writes one (NaN and Infinity included): nothing a CSV reader splits on. */
const CSV_NUMBER = /^[-+]?(\d+(\.\d*)?|\.\d+)([eE][-+]?\d+)?$|^[-+]?(NaN|Infinity)$/

/**
 * Numbers and times go as they are, but through csvField when they are not what their kind says:
 * SQLite keeps any text in an INTEGER or TIMESTAMP column, and `7,"x"\r\nevil,row` written raw
 * added a row and a column to the answer (found by an adversarial probe).
 */
function csvEncoder(kind: ColumnKind): Encode {
  switch (kind) {
    case 'int':
    case 'bigint':
    case 'number':
    case 'decimal':
      return (text) => (CSV_NUMBER.test(text) ? text : csvField(text))
    case 'bool':
      return (text) => (text === 't' ? 'true' : text === 'f' ? 'false' : csvField(text))
    case 'date':
      return (text) => csvField(isoDate(text))
    case 'timestamptz':
      return (text) => csvField(isoTimestamp(text, true))
    case 'timestamp':
      return (text) => csvField(isoTimestamp(text, false))
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

// --- shared -----------------------------------------------------------------------------------

// RFC 3339 has the years 0000–9999 only. PostgreSQL's others (`0044-03-15 BC`, `10000-01-01`) go
// in ISO 8601's expanded form, as ECMAScript's Date reads it: a sign, six digits or more, and 1 BC is
// year 0 (`-000043-03-15`); `infinity` and `-infinity` as PostgreSQL spells them. Only text that
// ends in `BC` or has no `-` after four digits takes that path: the common value costs two checks.

/** PostgreSQL's date text as ISO 8601: `2026-01-31` as it is. */
export function isoDate(text: string): string {
  return text.charCodeAt(4) === 45 && text.charCodeAt(text.length - 1) !== 67 ? text : expandedYear(text, '')
}

/** PostgreSQL's `2026-01-31 12:00:00.5+00` (the session is in UTC) as RFC 3339: `2026-01-31T12:00:00.5Z`; without a zone, none is added. */
export function isoTimestamp(text: string, zoned: boolean): string {
  if (text.charCodeAt(4) !== 45 || text.charCodeAt(text.length - 1) === 67) return expandedYear(text, zoned ? 'Z' : '')
  let out = text.length > 10 && text[10] === ' ' ? `${text.slice(0, 10)}T${text.slice(11)}` : text
  if (zoned && out.endsWith('+00')) out = `${out.slice(0, -3)}Z`
  return out
}

const PG_TEMPORAL = /^(\d{4,})-(\d\d-\d\d)(?: (\d\d:\d\d:\d\d(?:\.\d+)?))?(\+00)?( BC)?$/

/** A date or timestamp outside 0001–9999, or infinity; any other text (SQLite keeps any) as it is. */
function expandedYear(text: string, utc: string): string {
  const match = PG_TEMPORAL.exec(text)
  if (match === null) return text
  const [, digits = '', monthDay = '', time, zone, bc] = match
  const year = bc === undefined ? Number(digits) : 1 - Number(digits)
  const yyyy = year >= 0 && year <= 9999 ? String(year).padStart(4, '0') : `${year < 0 ? '-' : '+'}${String(Math.abs(year)).padStart(6, '0')}`
  return time === undefined ? `${yyyy}-${monthDay}` : `${yyyy}-${monthDay}T${time}${zone === undefined ? '' : utc}`
}
