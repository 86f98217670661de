// The audit record (SPEC "The audit record", plus `detail`: the problem detail of a refusal, so
// that "why" — issuer drift included — is in the log too) and its hash chain.
//
// `hash` is the SHA-256 of the record's canonical JSON without `hash`: keys sorted, no whitespace,
// values as JSON.stringify writes them (RFC 8785 for these value types), `prev_hash` included. The
// first record of a chain has a prev_hash of 64 zeros.
import { createHash, randomUUID } from 'node:crypto'
import { truncateClientValue } from '../errors/index.ts'
import type { RequestFacts } from '../request/index.ts'

/** SPEC order: how records are shown, printed and stored. */
export const AUDIT_FIELDS = [
  'id', 'time', 'request_id', 'trace_id', 'method', 'path', 'route', 'status', 'decision', 'code', 'detail',
  'statement', 'issuer', 'subject', 'client_id', 'roles', 'source_ip', 'user_agent', 'upstream', 'upstream_status',
  'duration_ms', 'bytes_in', 'bytes_out', 'limit', 'prev_hash', 'hash',
] as const

export type AuditField = (typeof AUDIT_FIELDS)[number]

export interface AuditRecord {
  id: string
  time: string
  request_id: string
  trace_id: string | null
  method: string
  path: string
  route: string | null
  status: number
  decision: 'allow' | 'deny' | 'error'
  code: string | null
  detail: string | null
  statement: string | null
  issuer: string | null
  subject: string | null
  client_id: string | null
  roles: string[]
  source_ip: string
  user_agent: string | null
  upstream: string | null
  upstream_status: number | null
  duration_ms: number
  bytes_in: number
  bytes_out: number
  limit: string | null
  prev_hash: string
  hash: string
}

export type RecordValues = Omit<AuditRecord, 'prev_hash' | 'hash'>

export const GENESIS_HASH = '0'.repeat(64)

/**
 * The one place the canonical form is defined: the fields in sorted order (JSON.stringify keeps
 * insertion order), so that JSON.stringify of this object is the canonical JSON.
 */
function sortedRecord(r: Omit<AuditRecord, 'hash'>): Omit<AuditRecord, 'hash'> {
  return {
    bytes_in: r.bytes_in, bytes_out: r.bytes_out, client_id: r.client_id, code: r.code, decision: r.decision, detail: r.detail,
    duration_ms: r.duration_ms, id: r.id, issuer: r.issuer, limit: r.limit, method: r.method, path: r.path, prev_hash: r.prev_hash,
    request_id: r.request_id, roles: r.roles, route: r.route, source_ip: r.source_ip, statement: r.statement, status: r.status,
    subject: r.subject, time: r.time, trace_id: r.trace_id, upstream: r.upstream, upstream_status: r.upstream_status, user_agent: r.user_agent,
  }
}

/** RFC 8785-style canonical JSON of a record without its hash. */
export function canonicalJson(record: Omit<AuditRecord, 'hash'>): string {
  return JSON.stringify(sortedRecord(record))
}

export function hashOf(record: Omit<AuditRecord, 'hash'>): string {
  return createHash('sha256').update(canonicalJson(record)).digest('hex')
}

/**
 * The request thread writes a record's canonical JSON with this in place of prev_hash; the audit
 * worker, which owns the chain, splices the real one in. The sequence cannot occur inside a value:
 * a string's quotes are always escaped.
 */
const PENDING = '\u0001'
const PENDING_FIELD = `"prev_hash":${JSON.stringify(PENDING)}`

/** PostgreSQL text cannot hold NUL, and a token's claims can: replace it before anything is hashed. */
function clean(value: string): string {
  return value.includes('\u0000') ? value.replaceAll('\u0000', '\ufffd') : value
}

function cleanOrNull(value: string | null | undefined, maxChars: number): string | null {
  return value === null || value === undefined ? null : clean(truncateClientValue(value, maxChars))
}

// Values a client chose are bounded, so that one request writes a record of a bounded size (issue
// 22: a 6 KB iss, repeated in every detail, added 184 MB for 35,000 requests). Generous enough that
// real values arrive whole; a cut one ends in "…(truncated, N chars)".
const MAX_PATH_CHARS = 2048
const MAX_DETAIL_CHARS = 1024
const MAX_USER_AGENT_CHARS = 512
const MAX_PRINCIPAL_CHARS = 256

/** A finished request as its canonical JSON, prev_hash pending (what crosses to the worker). */
export function recordLine(ctx: RequestFacts, now = performance.now()): string {
  const identity = ctx.identity
  return JSON.stringify(sortedRecord({
    id: randomUUID(),
    time: new Date(ctx.startedAt).toISOString(),
    request_id: ctx.id,
    trace_id: ctx.trace?.traceId ?? null,
    method: clean(ctx.method),
    path: clean(truncateClientValue(ctx.path, MAX_PATH_CHARS)),
    route: ctx.route?.id ?? null,
    status: ctx.status,
    decision: ctx.decision,
    code: ctx.code,
    detail: cleanOrNull(ctx.error?.detail, MAX_DETAIL_CHARS),
    statement: ctx.statement,
    issuer: identity ? identity.iss : null,
    subject: identity ? cleanOrNull(identity.sub, MAX_PRINCIPAL_CHARS) : null,
    client_id: identity ? cleanOrNull(identity.clientId, MAX_PRINCIPAL_CHARS) : null,
    roles: ctx.roles as string[],
    source_ip: ctx.clientIp,
    user_agent: cleanOrNull(ctx.headers?.userAgent, MAX_USER_AGENT_CHARS),
    upstream: ctx.upstream,
    upstream_status: ctx.upstreamStatus,
    duration_ms: Math.round((now - ctx.startMono) * 1000) / 1000,
    bytes_in: ctx.bytesIn,
    bytes_out: ctx.bytesOut,
    limit: ctx.limit,
    prev_hash: PENDING,
  }))
}

/** A request Node's HTTP parser refused before the pipeline saw it. */
export function rejectedLine(info: { requestId: string; status: number; code: string; detail: string; peer: string }): string {
  return JSON.stringify(sortedRecord({
    id: randomUUID(), time: new Date().toISOString(), request_id: info.requestId, trace_id: null, method: '-', path: '-', route: null,
    status: info.status, decision: 'deny', code: info.code, detail: info.detail, statement: null, issuer: null, subject: null,
    client_id: null, roles: [], source_ip: info.peer, user_agent: null, upstream: null, upstream_status: null, duration_ms: 0,
    bytes_in: 0, bytes_out: 0, limit: null, prev_hash: PENDING,
  }))
}

/** Links a line to the chain: the prev_hash spliced in, the hash taken, the record parsed once. */
export function linkLine(line: string, prevHash: string): AuditRecord {
  const at = line.indexOf(PENDING_FIELD)
  if (at === -1) throw new Error('an audit line without its prev_hash placeholder')
  const canonical = `${line.slice(0, at)}"prev_hash":"${prevHash}"${line.slice(at + PENDING_FIELD.length)}`
  const record = JSON.parse(canonical) as AuditRecord
  record.hash = createHash('sha256').update(canonical).digest('hex')
  return record
}

/** Links a record to the chain. */
export function chain(values: RecordValues, prevHash: string): AuditRecord {
  const linked = { ...values, prev_hash: prevHash }
  return { ...linked, hash: hashOf(linked) }
}

/** A record with its fields in SPEC order (for JSON output). */
export function ordered(record: AuditRecord): AuditRecord {
  const out: Record<string, unknown> = {}
  for (const field of AUDIT_FIELDS) out[field] = record[field]
  return out as unknown as AuditRecord
}
