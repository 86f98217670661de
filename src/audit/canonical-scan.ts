// Reads a record's column values straight out of its canonical JSON (record.ts), in the field
// table's order (fields.ts), for the sinks' inserts. The audit worker hashes that text anyway;
// reading the values back from it instead of JSON.parse-ing a record object measured ~1.0 µs
// against ~1.5 µs per record on a loaded core, and leaves no 30-property object per record for
// the worker's small young generation (bench/README.md, "Profiling").
//
// The text is canonical: keys sorted, no whitespace, values as JSON.stringify writes them. A
// nullable field that is absent (an `added` field left out while null, or a value left undefined,
// which JSON.stringify drops) reads as null, as it does parsed. Anything else throws: the caller
// falls back to JSON.parse.
import { FIELD_SPECS } from './fields.ts'

/** A column's value as the sinks bind it: roles stays the JSON text it already is. */
export type ColumnValue = string | number | null

interface ScanField {
  /** `"name":`. */
  key: string
  /** Where its value goes in FIELD_SPECS order. */
  column: number
  /** Nullable: absent from the text, it is null (JSON.parse would give undefined, bound as null). */
  absentIsNull: boolean
}

/** Every field but `hash`, in canonical (sorted) order. */
const SCAN: readonly ScanField[] = FIELD_SPECS
  .map((field, column) => ({ name: field.name, key: `${JSON.stringify(field.name)}:`, column, absentIsNull: field.nullable === true }))
  .filter((field) => field.name !== 'hash')
  .sort((a, b) => (a.name < b.name ? -1 : 1))

const HASH_COLUMN = FIELD_SPECS.findIndex((field) => field.name === 'hash')
const QUOTE = 0x22
const BACKSLASH = 0x5c

class NotCanonical extends Error {}

/** The index of the quote that ends the string opened at `open`. */
function stringEnd(text: string, open: number): number {
  let end = text.indexOf('"', open + 1)
  // A quote after an odd run of backslashes is itself escaped.
  for (;;) {
    if (end === -1) throw new NotCanonical('an unterminated string')
    let backslashes = 0
    while (text.charCodeAt(end - 1 - backslashes) === BACKSLASH) backslashes++
    if (backslashes % 2 === 0) return end
    end = text.indexOf('"', end + 1)
  }
}

/**
 * Where the value valueAt last read ends (exclusive). Hot path (issue 15): a module variable rather
 * than a `{ value, next }` object per value, ~35 of them a record.
 */
let valueEnd = 0

/** The value at `at`; valueEnd is set past it. */
function valueAt(text: string, at: number): ColumnValue {
  const c = text.charCodeAt(at)
  if (c === QUOTE) {
    const end = stringEnd(text, at)
    const raw = text.slice(at + 1, end)
    valueEnd = end + 1
    return raw.includes('\\') ? (JSON.parse(`"${raw}"`) as string) : raw
  }
  if (c === 0x6e /* n */ && text.startsWith('null', at)) {
    valueEnd = at + 4
    return null
  }
  if (c === 0x5b /* [ */) {
    // An array of strings (roles): kept as its JSON text, which is what the columns hold.
    let next = at + 1
    while (text.charCodeAt(next) !== 0x5d /* ] */) {
      if (text.charCodeAt(next) === QUOTE) next = stringEnd(text, next) + 1
      else if (text.charCodeAt(next) === 0x2c /* , */) next++
      else throw new NotCanonical('an array that is not of strings')
    }
    valueEnd = next + 1
    return text.slice(at, next + 1)
  }
  // A number. Whole ones of up to 15 digits (status, bytes, attempts: most of them) are summed
  // digit by digit, exactly; anything else (a fraction, an exponent, a sign) goes through Number.
  let next = at
  let whole = 0
  for (let d = c; d >= 0x30 && d <= 0x39; d = text.charCodeAt(++next)) whole = whole * 10 + (d - 0x30)
  const end = text.charCodeAt(next)
  if (next > at && next - at <= 15 && (end === 0x2c || end === 0x7d) && (c !== 0x30 || next === at + 1)) {
    valueEnd = next
    return whole
  }
  for (let d = text.charCodeAt(next); d !== 0x2c && d !== 0x7d && next < text.length; d = text.charCodeAt(++next));
  const value = Number(text.slice(at, next))
  if (next === at || Number.isNaN(value)) throw new NotCanonical('a value that is not JSON')
  valueEnd = next
  return value
}

/** The columns of a record given as its canonical JSON and its hash (FIELD_SPECS order); throws if the text is not canonical. */
export function columnValues(canonical: string, hash: string): ColumnValue[] {
  const out = new Array<ColumnValue>(FIELD_SPECS.length).fill(null)
  let at = 1 // past `{`
  for (const field of SCAN) {
    if (!canonical.startsWith(field.key, at)) {
      if (field.absentIsNull) continue
      throw new NotCanonical(`no ${field.key} where expected`)
    }
    out[field.column] = valueAt(canonical, at + field.key.length)
    at = valueEnd + 1 // past `,` (or the closing `}`)
  }
  if (at !== canonical.length) throw new NotCanonical('text after the last field')
  out[HASH_COLUMN] = hash
  return out
}
