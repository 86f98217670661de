// The field table is the record: SPEC's order, the second wave's fields appended after `limit`, and
// a canonical form under which every record written before those fields still hashes as it did.
import { readFileSync } from 'node:fs'
import { describe, expect, it } from 'vitest'
import { ADDED_FIELDS, FIELD_SPECS } from '../../../src/audit/fields.ts'
import { CLIENT_REQUEST_BOUNDS, MAX_ECHOED_CHARS } from '../../../src/errors/truncate.ts'
import { AUDIT_FIELDS, canonicalJson, chain, GENESIS_HASH, hashOf, type AuditRecord } from '../../../src/audit/record.ts'
import type { StoredRow } from '../../../src/audit/sinks/sink.ts'

/** Records as Bouncer 0.1.0 wrote them (test/integration/fixtures/audit-0.1/README.md). */
const oldRecords = readFileSync(new URL('../../integration/fixtures/audit-0.1/spill.ndjson', import.meta.url), 'utf8')
  .trim().split('\n').map((line) => (JSON.parse(line) as StoredRow).record)

/** The canonical form as 0.1.0 wrote it (src/audit/record.ts at c0772f0), copied here unchanged. */
function canonicalBeforeTheTable(r: Omit<AuditRecord, 'hash'>): string {
  return JSON.stringify({
    bytes_in: r.bytes_in, bytes_out: r.bytes_out, client_id: r.client_id, code: r.code, decision: r.decision, detail: r.detail,
    duration_ms: r.duration_ms, id: r.id, issuer: r.issuer, limit: r.limit, method: r.method, path: r.path, prev_hash: r.prev_hash,
    request_id: r.request_id, roles: r.roles, route: r.route, source_ip: r.source_ip, statement: r.statement, status: r.status,
    subject: r.subject, time: r.time, trace_id: r.trace_id, upstream: r.upstream, upstream_status: r.upstream_status, user_agent: r.user_agent,
  })
}

const ADDED = ['credential', 'actor', 'tool', 'args_sha256', 'attempts', 'instance', 'masked', 'args', 'upstream_ms']

describe('the field table', () => {
  it('is SPEC\'s record in SPEC\'s order, with detail, and the added fields after limit', () => {
    expect(AUDIT_FIELDS).toEqual([
      'id', 'time', 'request_id', 'trace_id', 'method', 'path', 'route', 'status', 'decision', 'code', 'detail', 'statement', 'issuer',
      'subject', 'client_id', 'roles', 'source_ip', 'user_agent', 'upstream', 'upstream_status', 'duration_ms', 'bytes_in', 'bytes_out',
      'limit', ...ADDED, 'prev_hash', 'hash',
    ])
    expect(ADDED_FIELDS.map((field) => field.name)).toEqual(ADDED)
    expect(ADDED_FIELDS.every((field) => field.nullable)).toBe(true) // older records read as null
  })

  it('bounds exactly the values a client or an issuer chose', () => {
    expect(Object.fromEntries(FIELD_SPECS.filter((f) => f.client).map((f) => [f.name, f.client]))).toEqual({
      method: 32, path: 2048, route: 2048, detail: 1024, subject: 256, client_id: 256, user_agent: 512, actor: 256, tool: 256, args: 4096,
    })
  })

  it('bounds a path, a method and a subject as a span does (errors/truncate.ts): fields.ts has no runtime imports, so the numbers stand twice, held equal here', () => {
    const bound = (name: string) => FIELD_SPECS.find((f) => f.name === name)?.client
    expect({ path: bound('path'), method: bound('method'), subject: bound('subject') }).toEqual({ ...CLIENT_REQUEST_BOUNDS, subject: MAX_ECHOED_CHARS })
  })
})

describe('the canonical JSON', () => {
  it('of every record 0.1.0 wrote is the JSON it hashed, so those records still verify', () => {
    expect(oldRecords).toHaveLength(7)
    for (const { hash, ...rest } of oldRecords) {
      expect(canonicalJson(rest)).toBe(canonicalBeforeTheTable(rest))
      expect(hashOf(rest)).toBe(hash)
      // Read back from a migrated table, the added fields are null: the same record, the same hash.
      expect(hashOf({ ...rest, credential: null, actor: null, tool: null, args_sha256: null, attempts: null, instance: null, masked: null, args: null, upstream_ms: null })).toBe(hash)
    }
  })

  it('of a record without the added fields is what 0.1.0 wrote for it', () => {
    const record = chain({
      id: 'a', time: '2026-11-26T12:00:00.000Z', request_id: 'r', method: 'GET', path: '/x', status: 200, decision: 'allow', roles: ['r'],
      source_ip: '10.0.0.1', duration_ms: 1.5, bytes_in: 0, bytes_out: 2,
    }, GENESIS_HASH)
    const { hash: _hash, ...rest } = record
    expect(canonicalJson(rest)).toBe(canonicalBeforeTheTable(rest))
  })

  it('holds an added field once it is set: setting one on an old record, or clearing one, breaks its hash', () => {
    const [old] = oldRecords as [AuditRecord]
    const { hash, ...rest } = old
    for (const [field, value] of [['credential', 'bearer'], ['instance', 'gw-1'], ['attempts', 1], ['args_sha256', 'a'.repeat(64)]] as const) {
      expect(hashOf({ ...rest, [field]: value })).not.toBe(hash)
    }
    const written = chain({ ...rest, credential: 'bearer', attempts: 1, instance: 'gw-1' }, old.prev_hash)
    const { hash: writtenHash, ...writtenRest } = written
    expect(canonicalJson(writtenRest)).toContain('"attempts":1,"bytes_in"')
    expect(canonicalJson(writtenRest)).toContain('"id":"02a49374-a863-4863-89c3-d9f5cfd24c82","instance":"gw-1","issuer"')
    expect(hashOf(writtenRest)).toBe(writtenHash)
    expect(hashOf({ ...writtenRest, instance: null })).not.toBe(writtenHash)
    expect(hashOf({ ...writtenRest, attempts: 2 })).not.toBe(writtenHash)
  })

  it('treats a null added field and one the record lacks alike (a table without its column reads so)', () => {
    const [old] = oldRecords as [AuditRecord]
    const { hash: _hash, ...rest } = old
    const withNulls = { ...rest, credential: null, actor: null, tool: null, args_sha256: null, attempts: null, instance: null, masked: null, args: null, upstream_ms: null }
    expect(canonicalJson(withNulls)).toBe(canonicalJson(rest))
    // A field of the first record never is left out: a null there is written as null.
    expect(canonicalJson(rest)).toContain('"limit":null')
  })
})
