// The audit record (its fields: fields.ts) and its hash chain.
//
// `hash` is the SHA-256 of the record's canonical JSON without `hash`: keys sorted, no whitespace,
// values as JSON.stringify writes them (RFC 8785 for these value types), `prev_hash` included. The
// first record of a chain has a prev_hash of 64 zeros. A field added after logs existed (`added` in
// fields.ts) is left out while it is null: a record written before it existed hashes as it did
// then, and a value set later cannot be removed, nor one added, without changing the hash.
import { createHash, hash, randomUUID } from 'node:crypto'
import { truncateClientValue, type ErrorCode } from '../errors/index.ts'
import type { RequestFacts } from '../request/index.ts'
import { ADDED_FIELDS, AUDIT_FIELDS, FIELD_SPECS, type AuditRecord, type ClientField, type NullableField } from './fields.ts'

export { AUDIT_FIELDS, type AuditField, type AuditRecord } from './fields.ts'

export type RecordValues = Omit<AuditRecord, 'prev_hash' | 'hash'>

/** Record values with every nullable field optional (null when left out). */
export type RecordInput = Omit<RecordValues, NullableField> & Partial<Pick<RecordValues, NullableField>>

export const GENESIS_HASH = '0'.repeat(64)


interface CanonicalField {
  name: string
  /** `"name":`, written once. */
  key: string
  /** Left out while null (an `added` field). */
  omitNull: boolean
}

/** The fields hashed, in canonical (sorted) order. */
const CANONICAL: readonly CanonicalField[] = FIELD_SPECS
  .filter((field) => field.name !== 'hash')
  .map((field) => ({ name: field.name, key: `${JSON.stringify(field.name)}:`, omitNull: field.added === true }))
  .sort((a, b) => (a.name < b.name ? -1 : 1))

/** What JSON.stringify would escape in a string: quotes, backslashes, controls, and lone surrogates. */
// eslint-disable-next-line no-control-regex -- the control characters are what it looks for
const NEEDS_ESCAPE = /["\\\u0000-\u001f\ud800-\udfff]/

/**
 * JSON.stringify of one value, without calling it for null, numbers and plain strings (canonicalJson
 * runs for every stored record `audit verify` checks).
 */
export function jsonValue(value: unknown): string {
  if (value === null) return 'null'
  if (typeof value === 'number') return Number.isFinite(value) ? String(value) : 'null'
  if (typeof value === 'string' && !NEEDS_ESCAPE.test(value)) return `"${value}"`
  return JSON.stringify(value)
}

/**
 * The request thread writes a record's canonical JSON with this in place of prev_hash; the audit
 * worker, which owns the chain, splices the real one in. The sequence cannot occur inside a value:
 * a string's quotes are always escaped.
 */
const PENDING = '\u0001'
const PENDING_FIELD = `"prev_hash":${JSON.stringify(PENDING)}`

/**
 * What a sink stores must read back as what was hashed. PostgreSQL text cannot hold NUL, and a
 * token's claims can; an unpaired UTF-16 surrogate (an `iss` of "\ud800" in an unsigned token,
 * quoted in the refusal's detail) is escaped by JSON.stringify but stored as UTF-8, which turns it
 * into U+FFFD: the record read back no longer matched its hash, and verify cried tampering. Both
 * are replaced with U+FFFD before anything is hashed.
 */
export function storedText(value: string): string {
  const wellFormed = value.isWellFormed() ? value : value.toWellFormed()
  return wellFormed.includes('\u0000') ? wellFormed.replaceAll('\u0000', '\ufffd') : wellFormed
}

/**
 * RFC 8785-style canonical JSON of a record without its hash: what `audit verify` and the sinks'
 * fallbacks hash a stored record by. An absent value counts as null: a record read from a table
 * that lacks an added field's column hashes as one that has it, null. A request's own line is
 * written by recordLine, which the property test in record.test.ts holds to this form.
 */
export function canonicalJson(record: Omit<AuditRecord, 'hash'>): string {
  const values = record as unknown as Record<string, unknown>
  let json = ''
  for (const field of CANONICAL) {
    const value = values[field.name]
    if (value === undefined || (value === null && field.omitNull)) continue
    json += (json === '' ? '{' : ',') + field.key + jsonValue(value)
  }
  return json === '' ? '{}' : `${json}}`
}

export function hashOf(record: Omit<AuditRecord, 'hash'>): string {
  return createHash('sha256').update(canonicalJson(record)).digest('hex')
}

/**
 * `Date#toISOString` for a time in milliseconds, its second's prefix kept: measured ~0.5 µs per
 * call on the request thread, ~0.05 µs when the second is the one before (as it nearly always is).
 */
let isoSecond = Number.NaN
let isoPrefix = ''
export function isoTime(ms: number): string {
  if (!Number.isInteger(ms)) return new Date(ms).toISOString()
  const second = Math.floor(ms / 1000)
  if (second !== isoSecond) {
    const iso = new Date(second * 1000).toISOString() // 2026-12-01T17:14:27.000Z
    if (iso.length !== 24) return new Date(ms).toISOString() // a year past 9999 or before 0: no cache
    isoSecond = second
    isoPrefix = iso.slice(0, 20)
  }
  const millis = ms - second * 1000
  return `${isoPrefix}${millis < 10 ? '00' : millis < 100 ? '0' : ''}${millis}Z`
}

/**
 * Date.parse for isoTime's own form (`2026-12-01T17:14:27.330Z`), its second kept: the audit worker
 * turns every record's time into the SQLite log's time_ms, and Date.parse measured ~0.6 µs a call
 * there (issue 15); the record before nearly always shares the second. Any other form: Date.parse.
 */
let parsedPrefix = ''
let parsedSecondMs = Number.NaN
export function timeMsOf(iso: string): number {
  // Only toISOString's own shape: `T` and `.` where it writes them, and never hour 24, which
  // Date.parse takes only as 24:00:00.000 (so the second's epoch plus milliseconds would be wrong).
  if (iso.length !== 24 || iso.charCodeAt(10) !== 0x54 /* T */ || iso.charCodeAt(19) !== 0x2e /* . */ || iso.charCodeAt(23) !== 0x5a /* Z */ || iso.startsWith('24', 11)) {
    return Date.parse(iso)
  }
  const hundreds = iso.charCodeAt(20) - 0x30
  const tens = iso.charCodeAt(21) - 0x30
  const units = iso.charCodeAt(22) - 0x30
  if (hundreds < 0 || hundreds > 9 || tens < 0 || tens > 9 || units < 0 || units > 9) return Date.parse(iso)
  if (parsedPrefix === '' || !iso.startsWith(parsedPrefix)) {
    const second = Date.parse(`${iso.slice(0, 20)}000Z`)
    if (Number.isNaN(second)) return second
    parsedPrefix = iso.slice(0, 20)
    parsedSecondMs = second
  }
  return parsedSecondMs + hundreds * 100 + tens * 10 + units
}

/**
 * A client's value as the record keeps it: NUL and unpaired surrogates replaced, cut at the field's
 * bound (fields.ts `client`). A search's filter is read through it too (search.ts), so a value past
 * the bound finds the records that keep it cut.
 */
export function keptValue(value: string, maxChars: number): string {
  return storedText(truncateClientValue(value, maxChars))
}

function bounded(value: string | null | undefined, maxChars: number): string | null | undefined {
  return typeof value === 'string' ? keptValue(value, maxChars) : value
}

/** An added field (fields.ts `added`) is left out of the canonical JSON while null: undefined is what JSON.stringify leaves out. */
function unlessNull<T>(value: T | null | undefined): T | undefined {
  return value === null ? undefined : value
}

/** A number JSON cannot hold (NaN, ±Infinity) would be written as null, which an added field never is. */
function finiteOrNothing(value: number): number | undefined {
  return Number.isFinite(value) ? value : undefined
}

const CLIENT_BOUND = Object.fromEntries(FIELD_SPECS.flatMap((field) => (field.client === undefined ? [] : [[field.name, field.client]]))) as Record<ClientField, number>

/**
 * A finished request as its canonical JSON, prev_hash pending (what crosses to the worker): every
 * value of the record a request writes, read from its context (the one place the record reads it).
 *
 * Hot path (issue 15): the keys are written in canonical (sorted) order, so one JSON.stringify of
 * this literal is the canonical form — V8's serializer, with no per-field megamorphic load, escape
 * test or concatenation. Measured in process (300,000 lines, CPU, 6 alternating rounds): median
 * 6.37 µs per line through canonicalOf, 3.82 this way; in the gateway, perf had put canonicalOf at
 * ~8.9 µs of (d)'s request thread (bench/README.md, "Profiling"). A property test (record.test.ts)
 * checks that any line re-canonicalises to itself, so the order here cannot drift.
 */
export function recordLine(ctx: RequestFacts, instance: string, now = performance.now()): string {
  const identity = ctx.identity
  const values = {
    actor: unlessNull(bounded(identity?.actor ? identity.actor.sub : null, CLIENT_BOUND.actor)), // on behalf of (token exchange)
    args: unlessNull(bounded(ctx.args, CLIENT_BOUND.args)),
    args_sha256: unlessNull(ctx.argsSha256),
    // Tries sent upstream, retries included; left out when nothing was sent (refused, or a built-in endpoint).
    attempts: ctx.attempts === 0 ? undefined : unlessNull(ctx.attempts),
    bytes_in: ctx.bytesIn,
    bytes_out: ctx.bytesOut,
    client_id: bounded(identity ? identity.clientId : null, CLIENT_BOUND.client_id),
    code: ctx.code,
    credential: unlessNull(ctx.credential),
    decision: ctx.decision,
    detail: bounded(ctx.error?.detail ?? ctx.note, CLIENT_BOUND.detail),
    duration_ms: Math.round((now - ctx.startMono) * 1000) / 1000,
    id: randomUUID(),
    instance: unlessNull(instance),
    issuer: identity ? identity.iss : null,
    limit: ctx.limit,
    masked: unlessNull(ctx.masked),
    method: bounded(ctx.method, CLIENT_BOUND.method),
    path: bounded(ctx.path, CLIENT_BOUND.path),
    prev_hash: PENDING,
    request_id: ctx.id,
    roles: ctx.roles,
    route: bounded(ctx.route?.id ?? null, CLIENT_BOUND.route),
    source_ip: ctx.clientIp,
    statement: ctx.statement,
    status: ctx.status,
    subject: bounded(identity ? identity.sub : null, CLIENT_BOUND.subject),
    time: isoTime(ctx.startedAt),
    tool: unlessNull(bounded(ctx.tool, CLIENT_BOUND.tool)),
    trace_id: ctx.trace?.traceId ?? null,
    upstream: ctx.upstream,
    upstream_ms: typeof ctx.upstreamMs === 'number' ? finiteOrNothing(Math.round(ctx.upstreamMs * 1000) / 1000) : undefined,
    upstream_status: ctx.upstreamStatus,
    user_agent: bounded(ctx.headers?.userAgent ?? null, CLIENT_BOUND.user_agent),
  } satisfies { [F in Exclude<keyof AuditRecord, 'hash'>]: unknown }
  return JSON.stringify(values)
}

/** Values with every nullable field not given set to null. */
export function recordValues(input: RecordInput): RecordValues {
  const values: Record<string, unknown> = {}
  for (const field of AUDIT_FIELDS) {
    if (field !== 'prev_hash' && field !== 'hash') values[field] = (input as Record<string, unknown>)[field] ?? null
  }
  return values as RecordValues
}

/** What the audit knows of a request Node's HTTP parser refused before the pipeline saw it. */
export interface RejectedRequest {
  requestId: string
  status: number
  code: ErrorCode
  detail: string
  peer: string
}

/** A refused request's line, written by recordLine as every request's is (method and path: `-`). */
export function rejectedLine(info: RejectedRequest, instance: string): string {
  const now = performance.now()
  return recordLine({
    startedAt: Date.now(), startMono: now, id: info.requestId, method: '-', path: '-', query: '', headers: null,
    clientIp: info.peer, forwardedFor: info.peer, viaTrustedProxy: false, trace: null, route: null, params: {}, rest: [],
    identity: null, credential: null, roles: [], statement: null, decision: 'deny', code: info.code, error: null, limit: null,
    upstream: null, upstreamStatus: null, upstreamMs: null, attempts: 0, status: info.status, bytesIn: 0, bytesOut: 0,
    masked: null, tool: null, argsSha256: null, args: null, note: info.detail,
  }, instance, now)
}

/** A line linked to the chain: the canonical JSON that was hashed, and its hash. */
export interface LinkedLine {
  canonical: string
  hash: string
}

/**
 * Links a line to the chain: the prev_hash spliced in and the hash taken, nothing parsed (the
 * SQLite and PostgreSQL sinks read their columns from the text: canonical-scan.ts). crypto.hash is
 * the one-shot form: measured ~0.7 µs against ~1.3 µs for createHash().update().digest().
 */
export function link(line: string, prevHash: string): LinkedLine {
  const at = line.indexOf(PENDING_FIELD)
  if (at === -1) throw new Error('an audit line without its prev_hash placeholder')
  const canonical = `${line.slice(0, at)}"prev_hash":"${prevHash}"${line.slice(at + PENDING_FIELD.length)}`
  return { canonical, hash: hash('sha256', canonical, 'hex') }
}

/** The record a linked line stands for, parsed (an added field left out of the text is null). */
export function recordOf(linked: LinkedLine): AuditRecord {
  const record = JSON.parse(linked.canonical) as Record<string, unknown>
  for (const field of ADDED_FIELDS) record[field.name] ??= null // left out of the canonical JSON while null
  record.hash = linked.hash
  return record as AuditRecord
}

/** Links a line to the chain: the prev_hash spliced in, the hash taken, the record parsed once. */
export function linkLine(line: string, prevHash: string): AuditRecord {
  return recordOf(link(line, prevHash))
}

/** Links a record to the chain. */
export function chain(input: RecordInput, prevHash: string): AuditRecord {
  const linked = { ...recordValues(input), prev_hash: prevHash }
  return { ...linked, hash: hashOf(linked) }
}

/** A record with its fields in SPEC order (for JSON output); an absent added field is null. */
export function ordered(record: AuditRecord): AuditRecord {
  const values = record as unknown as Record<string, unknown>
  const out: Record<string, unknown> = {}
  for (const field of AUDIT_FIELDS) out[field] = values[field] ?? null
  return out as AuditRecord
}
