// What a line of a spill file must be before replay hands it to a sink: UTF-8 JSON of a stored row
// whose record has every field with its kind (fields.ts). Anything else (a disk error, a write cut
// short, a hand edit) would make the sink's insert fail on every replay, and the sink would never
// come back.
import { ADDED_FIELDS, FIELD_SPECS, type FieldKind } from './fields.ts'
import type { StoredRow } from './sinks/sink.ts'

const HASH = /^[0-9a-f]{64}$/
const INT32 = 2 ** 31 - 1
const utf8 = new TextDecoder('utf-8', { fatal: true })

/** Whether a value is one of its kind, as the sinks' columns take it (PostgreSQL refuses 2^31 in an integer). */
function fits(kind: FieldKind, value: unknown): boolean {
  switch (kind) {
    case 'text':
      return typeof value === 'string'
    case 'integer':
      return Number.isInteger(value) && Math.abs(value as number) <= INT32
    case 'count':
      return Number.isSafeInteger(value)
    case 'number':
      return typeof value === 'number' && Number.isFinite(value)
    case 'time':
      return typeof value === 'string' && !Number.isNaN(Date.parse(value))
    case 'sha256':
      return typeof value === 'string' && HASH.test(value)
    case 'decision':
      return value === 'allow' || value === 'deny' || value === 'error'
    case 'roles':
      return Array.isArray(value) && value.every((role) => typeof role === 'string')
  }
}

const isObject = (value: unknown): value is Record<string, unknown> => typeof value === 'object' && value !== null && !Array.isArray(value)

/** Why a parsed line is not a stored row, or null when it is one. */
function rowProblem(value: unknown, legacyChain: () => string | null): string | null {
  if (!isObject(value)) return 'not a stored record (a JSON object with chain, seq and record)'
  // 0.1.0 wrote {seq, record}: its one chain is the directory's state file's (chain.json).
  if (value.chain === undefined) value.chain = legacyChain() ?? undefined
  if (typeof value.chain !== 'string' || value.chain === '') return 'no chain'
  if (!Number.isSafeInteger(value.seq) || (value.seq as number) < 1) return 'no valid seq'
  const record = value.record
  if (!isObject(record)) return 'no record'
  for (const field of FIELD_SPECS) {
    const value = record[field.name]
    if ((value === null && field.nullable) || (value === undefined && field.added)) continue
    if (!fits(field.kind, value)) return `record.${field.name} is missing or not a valid ${field.kind}${field.nullable ? ' or null' : ''}`
  }
  return null
}

/** A line spilled before a field was added has none: it is null, as in the sinks. */
function withAddedFields(row: StoredRow): StoredRow {
  const record = row.record as unknown as Record<string, unknown>
  for (const field of ADDED_FIELDS) record[field.name] ??= null
  return row
}

/**
 * A spill line: the row, null for a blank line, or why it cannot be replayed. `legacyChain`: the
 * chain of a line that names none (0.1.0's), read only when one comes.
 */
export function parseSpillLine(bytes: Uint8Array, legacyChain: () => string | null = () => null): StoredRow | null | { problem: string } {
  let text: string
  try {
    text = utf8.decode(bytes)
  } catch {
    return { problem: 'not UTF-8' }
  }
  if (text.trim() === '') return null
  let value: unknown
  try {
    value = JSON.parse(text)
  } catch (err) {
    return { problem: `not JSON (${(err as Error).message})` }
  }
  const problem = rowProblem(value, legacyChain)
  return problem === null ? withAddedFields(value as StoredRow) : { problem }
}
