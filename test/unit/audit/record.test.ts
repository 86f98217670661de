// The canonical form is the contract a third party re-verifies the chain with: sorted keys,
// JSON.stringify values, prev_hash included, hash excluded.
import { createHash } from 'node:crypto'
import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { AUDIT_FIELDS, canonicalJson, GENESIS_HASH, hashOf, jsonValue, linkLine, recordLine, type AuditRecord } from '../../../src/audit/record.ts'
import type { RequestContext } from '../../../src/request/index.ts'

const ctx = {
  startedAt: Date.UTC(2026, 10, 26, 12, 0, 0),
  startMono: 0,
  id: 'req-1',
  trace: { traceId: '4bf92f3577b34da6a3ce929d0e0e4736' },
  method: 'GET',
  path: '/sales/daily/eu',
  route: { id: 'sales.daily' },
  status: 403,
  decision: 'deny',
  code: 'policy_denied',
  error: { detail: 'Statement "NoPII" denies GET.' },
  statement: 'NoPII',
  identity: { iss: 'https://sso.example.com/', sub: 'svc\u0000looker', clientId: 'looker-prod' },
  credential: 'bearer',
  roles: ['reports'],
  clientIp: '10.1.2.3',
  headers: { userAgent: 'Looker/24.0 "quoted"' },
  upstream: null,
  upstreamStatus: null,
  upstreamMs: null,
  bytesIn: 0,
  bytesOut: 230,
  limit: null,
} as unknown as RequestContext

const INSTANCE = 'gw-eu-1:4242'

describe('the audit record', () => {
  it('is linked by splicing prev_hash into the canonical JSON the request thread wrote', () => {
    const first = linkLine(recordLine(ctx, INSTANCE, 3.25), GENESIS_HASH)
    const second = linkLine(recordLine(ctx, INSTANCE, 5), first.hash)
    expect(first.prev_hash).toBe(GENESIS_HASH)
    expect(second.prev_hash).toBe(first.hash)
    const { hash, ...rest } = first
    expect(hashOf(rest)).toBe(hash)
    expect(hash).toBe(createHash('sha256').update(canonicalJson(rest)).digest('hex'))
  })

  it('has sorted keys, no whitespace, and every field but hash in its canonical form (an added one only when set)', () => {
    const record = linkLine(recordLine(ctx, INSTANCE, 3.25), GENESIS_HASH)
    const { hash: _hash, ...rest } = record
    const canonical = canonicalJson(rest)
    const keys = Object.keys(JSON.parse(canonical) as object)
    const unset = ['actor', 'tool', 'args_sha256', 'attempts', 'masked', 'args', 'upstream_ms'] // no agent, no tool call, not sent upstream, no dataset
    expect(keys).toEqual([...AUDIT_FIELDS].filter((f) => f !== 'hash' && !unset.includes(f)).sort())
    expect(canonical).not.toMatch(/": |, "/)
    expect(canonical).toContain('"duration_ms":3.25')
    expect(record).toMatchObject({ actor: null, tool: null, args_sha256: null, attempts: null }) // read back as null
  })

  it('names the credential of a verified caller, the tries upstream and the instance that wrote it', () => {
    const verified = linkLine(recordLine(ctx, INSTANCE), GENESIS_HASH)
    expect(verified).toMatchObject({ credential: 'bearer', attempts: null, instance: INSTANCE, actor: null, tool: null, args_sha256: null })
    const forwarded = { ...ctx, identity: null, credential: null, upstream: 'sales-api', upstreamStatus: 200, status: 200, decision: 'allow', attempts: 1 } as unknown as RequestContext
    expect(linkLine(recordLine(forwarded, INSTANCE), GENESIS_HASH)).toMatchObject({ credential: null, attempts: 1, upstream: 'sales-api', instance: INSTANCE })
    const retried = { ...forwarded, attempts: 3 } as unknown as RequestContext
    expect(linkLine(recordLine(retried, INSTANCE), GENESIS_HASH)).toMatchObject({ attempts: 3 })
    const timed = { ...forwarded, upstreamMs: 12.34567 } as unknown as RequestContext
    expect(linkLine(recordLine(timed, INSTANCE), GENESIS_HASH)).toMatchObject({ upstream_ms: 12.346 })
  })

  it('cannot be confused by a value that looks like the placeholder', () => {
    const tricky = { ...ctx, headers: { userAgent: '","prev_hash":"\u0001' } } as unknown as RequestContext
    const record = linkLine(recordLine(tricky, INSTANCE), 'f'.repeat(64))
    expect(record.prev_hash).toBe('f'.repeat(64))
    expect(record.user_agent).toBe('","prev_hash":"\u0001')
  })

  it('replaces NUL (PostgreSQL text cannot hold it) before hashing', () => {
    const record: AuditRecord = linkLine(recordLine(ctx, INSTANCE), GENESIS_HASH)
    expect(record.subject).toBe('svc\ufffdlooker')
  })
})

describe("a request's line", () => {
  // recordLine writes its keys in canonical order and lets one JSON.stringify serialise them (the
  // hot path): whatever the values, the line must be the canonical form of the record it holds.
  const text = fc.oneof(fc.string({ unit: 'binary' }), fc.constantFrom('"', '\\', '\u0000', '\u0001', '\ud800', '","prev_hash":"\u0001'), fc.string({ minLength: 2_000, maxLength: 5_000 }))
  const maybe = <T,>(value: fc.Arbitrary<T>) => fc.option(value, { nil: null })
  const number = fc.oneof(fc.double(), fc.integer(), fc.constant(-0))
  const arbitraryContext = fc.record({
    startedAt: fc.integer({ min: 0, max: 4_102_444_800_000 }), startMono: fc.double({ min: 0, max: 1e6, noNaN: true }), id: text,
    trace: maybe(fc.record({ traceId: text })), method: text, path: text, route: maybe(fc.record({ id: text })), status: fc.integer(), decision: fc.constantFrom('allow', 'deny', 'error'),
    code: maybe(text), error: maybe(fc.record({ detail: text })), note: maybe(text), statement: maybe(text),
    identity: maybe(fc.record({ iss: text, sub: text, clientId: maybe(text), actor: maybe(fc.record({ sub: text })) })),
    credential: maybe(text), roles: fc.array(text, { maxLength: 4 }), clientIp: text, headers: maybe(fc.record({ userAgent: maybe(text) })),
    upstream: maybe(text), upstreamStatus: maybe(fc.integer()), upstreamMs: maybe(number), bytesIn: number, bytesOut: number, limit: maybe(text),
    tool: maybe(text), argsSha256: maybe(text), args: maybe(text), attempts: fc.integer({ min: 0, max: 5 }), masked: maybe(text),
  })

  it('is the canonical JSON of the record it holds, for any values', () => {
    fc.assert(fc.property(arbitraryContext, text, fc.double({ min: 0, max: 1e7, noNaN: true }), (values, instance, now) => {
      const line = recordLine(values as unknown as RequestContext, instance, now)
      const record = JSON.parse(line) as Omit<AuditRecord, 'hash'>
      const canonical = canonicalJson(record)
      let at = 0 // compared around the first difference: the lines are kilobytes long
      while (at < line.length && canonical[at] === line[at]) at++
      expect(line.slice(at - 80, at + 40)).toBe(canonical.slice(at - 80, at + 40))
      expect(line.length).toBe(canonical.length)
      expect(record.prev_hash).toBe('\u0001') // pending: the worker splices the chain's hash in
      for (const name of ['path', 'user_agent', 'subject', 'detail', 'args'] as const) {
        expect(String(record[name] ?? '')).not.toContain('\u0000')
      }
    }), { numRuns: 500 })
  })
})

describe('a canonical value', () => {
  // The line skips JSON.stringify for plain strings and numbers; what it writes must not differ.
  it('is what JSON.stringify writes, for any string, number or list of strings', () => {
    const tricky = ['', '"', '\\', '\u0000', '\u001f', '\u007f', '\u2028', '\ud800', '\udc00x', '\ud83d\ude00', 'é', '…(truncated, 9 chars)']
    for (const value of [...tricky, 0, -0, 1.5, 1e21, 5e-324, Number.NaN, Number.POSITIVE_INFINITY, null, tricky]) {
      expect(jsonValue(value)).toBe(JSON.stringify(value))
    }
    fc.assert(fc.property(fc.oneof(fc.string({ unit: 'binary' }), fc.double(), fc.integer(), fc.array(fc.string({ unit: 'grapheme' }))), (value) => {
      expect(jsonValue(value)).toBe(JSON.stringify(value))
    }), { numRuns: 2_000 })
  })
})
