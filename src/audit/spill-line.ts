// What a line of a spill file must be before replay hands it to a sink: UTF-8 JSON of a stored row
// whose record has every field with its type. Anything else (a disk error, a write cut short, a
// hand edit) would make the sink's insert fail on every replay, and the sink would never come back.
import type { AuditField } from './record.ts'
import type { StoredRow } from './sinks/sink.ts'

type Kind = 'text' | 'text?' | 'number' | 'number?' | 'time' | 'hash' | 'decision' | 'roles'

/** Every record field and what it holds (a new field fails to compile until it is listed here). */
const FIELD_KINDS: Record<AuditField, Kind> = {
  id: 'text', time: 'time', request_id: 'text', trace_id: 'text?', method: 'text', path: 'text', route: 'text?',
  status: 'number', decision: 'decision', code: 'text?', detail: 'text?', statement: 'text?', issuer: 'text?',
  subject: 'text?', client_id: 'text?', roles: 'roles', source_ip: 'text', user_agent: 'text?', upstream: 'text?',
  upstream_status: 'number?', duration_ms: 'number', bytes_in: 'number', bytes_out: 'number', limit: 'text?',
  prev_hash: 'hash', hash: 'hash',
}

const HASH = /^[0-9a-f]{64}$/
const utf8 = new TextDecoder('utf-8', { fatal: true })

function fits(kind: Kind, value: unknown): boolean {
  switch (kind) {
    case 'text':
      return typeof value === 'string'
    case 'text?':
      return value === null || typeof value === 'string'
    case 'number':
      return typeof value === 'number' && Number.isFinite(value)
    case 'number?':
      return value === null || (typeof value === 'number' && Number.isFinite(value))
    case 'time':
      return typeof value === 'string' && !Number.isNaN(Date.parse(value))
    case 'hash':
      return typeof value === 'string' && HASH.test(value)
    case 'decision':
      return value === 'allow' || value === 'deny' || value === 'error'
    case 'roles':
      return Array.isArray(value) && value.every((role) => typeof role === 'string')
  }
}

const isObject = (value: unknown): value is Record<string, unknown> => typeof value === 'object' && value !== null && !Array.isArray(value)

/** Why a parsed line is not a stored row, or null when it is one. */
function rowProblem(value: unknown): string | null {
  if (!isObject(value)) return 'not a stored record (a JSON object with chain, seq and record)'
  if (typeof value.chain !== 'string' || value.chain === '') return 'no chain'
  if (!Number.isSafeInteger(value.seq) || (value.seq as number) < 1) return 'no valid seq'
  const record = value.record
  if (!isObject(record)) return 'no record'
  for (const [field, kind] of Object.entries(FIELD_KINDS)) {
    if (!fits(kind, record[field])) return `record.${field} is missing or not a valid ${kind.replace('?', ' or null')}`
  }
  return null
}

/** A spill line: the row, null for a blank line, or why it cannot be replayed. */
export function parseSpillLine(bytes: Uint8Array): StoredRow | null | { problem: string } {
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
  const problem = rowProblem(value)
  return problem === null ? (value as StoredRow) : { problem }
}
