// The sinks read a chained record's columns from its canonical text (canonical-scan.ts): they must
// be exactly what binding the parsed record gives, whatever the values hold.
import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { columnValues } from '../../../src/audit/canonical-scan.ts'
import { FIELD_SPECS } from '../../../src/audit/fields.ts'
import { chain, canonicalJson, GENESIS_HASH, isoTime, link, recordLine, recordOf, timeMsOf, type RecordInput } from '../../../src/audit/record.ts'
import { LinkedRow, rowColumns } from '../../../src/audit/sinks/sink.ts'
import type { RequestFacts } from '../../../src/request/index.ts'

/** What the sinks bound before: the record as the worker parsed it from the same text, roles as JSON text. */
function fromRecord(chained: object): unknown[] {
  const { hash, ...rest } = chained as ReturnType<typeof chain>
  const record = recordOf({ canonical: canonicalJson(rest), hash }) as unknown as Record<string, unknown>
  return FIELD_SPECS.map((field) => (field.kind === 'roles' ? JSON.stringify(record[field.name]) : (record[field.name] ?? null)))
}

function input(overrides: Partial<RecordInput>): RecordInput {
  return {
    id: '6f1c0b1e-3f5e-4a59-9b0e-2f8f6f1d9a11', time: '2026-12-01T17:14:27.330Z', request_id: 'req-1', method: 'GET', path: '/a', status: 200,
    decision: 'allow', roles: ['r'], source_ip: '10.0.0.1', duration_ms: 1.5, bytes_in: 0, bytes_out: 10, ...overrides,
  }
}

function columnsOf(record: ReturnType<typeof chain>): unknown[] {
  const { hash, ...rest } = record
  return columnValues(canonicalJson(rest), hash)
}

describe('columns read from the canonical text', () => {
  it('match the parsed record for awkward values: quotes, backslashes, controls, lone surrogates, brackets in roles, absent added fields', () => {
    const awkward = ['plain', 'a "quoted" \\ path', 'ends with a backslash \\', '\\"', 'tab\tnew\nline\u0001', '\ud800 lone', 'emoji 😀', '', ']', '","id":"x']
    for (const value of awkward) {
      const record = chain(input({ path: value, subject: value, roles: [value, ']', '[', ''], detail: value, user_agent: value, actor: value, attempts: 3, duration_ms: -0.25 }), GENESIS_HASH)
      expect(columnsOf(record)).toEqual(fromRecord(record))
    }
    const bare = chain(input({ roles: [] }), GENESIS_HASH) // every added field absent from the text
    expect(columnsOf(bare)).toEqual(fromRecord(bare))
  })

  it('match the parsed record for any strings (property)', () => {
    fc.assert(fc.property(fc.string({ unit: 'binary' }), fc.array(fc.string({ unit: 'binary' }), { maxLength: 4 }), fc.double({ noNaN: true, noDefaultInfinity: true }), (text, roles, number) => {
      const record = chain(input({ path: text, subject: text, roles, tool: text, duration_ms: number }), GENESIS_HASH)
      expect(columnsOf(record)).toEqual(fromRecord(record))
    }))
  })

  it('match the parsed record for any numbers: whole ones read digit by digit, and those it leaves to Number', () => {
    const edges = [0, 1, 9, 10, 404, 999_999_999_999_999, 1_000_000_000_000_000, Number.MAX_SAFE_INTEGER, 2 ** 53 + 2, 1e21, -0, -1, 0.5, 1.25e-7, 123.456]
    for (const value of edges) {
      const record = chain(input({ bytes_in: value, bytes_out: value, status: Number.isInteger(value) ? value : 200, duration_ms: value, attempts: Number.isInteger(value) ? value : null }), GENESIS_HASH)
      expect(columnsOf(record)).toEqual(fromRecord(record))
    }
    fc.assert(fc.property(fc.oneof(fc.nat(), fc.maxSafeNat(), fc.integer({ min: -(2 ** 40), max: 2 ** 40 }), fc.double({ noNaN: true, noDefaultInfinity: true })), (value) => {
      const record = chain(input({ bytes_out: value, upstream_ms: value }), GENESIS_HASH)
      expect(columnsOf(record)).toEqual(fromRecord(record))
    }))
  })

  it('reads a request line the worker linked, and falls back to the record for text that is not canonical', () => {
    const ctx = { startedAt: Date.now(), startMono: 0, id: 'req-9', method: 'GET', path: '/x', route: null, status: 200, decision: 'allow', code: null, error: null, statement: null, identity: null, roles: [], clientIp: '::1', headers: { userAgent: null }, upstream: null, upstreamStatus: null, bytesIn: 0, bytesOut: 0, limit: null, credential: null, attempts: 0 } as unknown as RequestFacts
    const linked = link(recordLine(ctx, 'host:1'), GENESIS_HASH)
    const row = new LinkedRow('c', 1, linked)
    expect(rowColumns(row)).toEqual(fromRecord(row.record))
    // A nullable value left undefined (here the context's note, so `detail`) is dropped from the
    // line: it reads as null, as parsed, instead of sending every such record down the slow path.
    const noDetail = link(recordLine({ ...ctx, note: undefined } as unknown as RequestFacts, 'host:1'), GENESIS_HASH)
    expect(noDetail.canonical).not.toContain('"detail"')
    expect(columnValues(noDetail.canonical, noDetail.hash)).toEqual(fromRecord(new LinkedRow('c', 1, noDetail).record))
    const odd = new LinkedRow('c', 1, { canonical: `{"zzz":1,${linked.canonical.slice(1)}`, hash: linked.hash })
    expect(() => columnValues(odd.linked.canonical, odd.linked.hash)).toThrow()
    expect(rowColumns(odd)).toEqual(FIELD_SPECS.map((field) => { const value = (odd.record as unknown as Record<string, unknown>)[field.name]; return field.kind === 'roles' ? JSON.stringify(value) : value ?? null }))
    expect(JSON.parse(JSON.stringify(row))).toEqual({ chain: 'c', seq: 1, record: JSON.parse(JSON.stringify(row.record)) })
  })
})

describe('the record time', () => {
  it('is what Date#toISOString writes, for any whole millisecond, in and across seconds', () => {
    for (const ms of [0, 999, 1000, 1_764_609_267_001, 1_764_609_267_010, 1_764_609_267_100, 1_764_609_267_999, 1_764_609_268_000, -1, -1001, 253_402_300_799_999, 253_402_300_800_000]) {
      expect(isoTime(ms)).toBe(new Date(ms).toISOString())
    }
    fc.assert(fc.property(fc.integer({ min: -62_000_000_000_000, max: 8_000_000_000_000_000 }), (ms) => {
      expect(isoTime(ms)).toBe(new Date(ms).toISOString())
    }))
    expect(isoTime(1.5)).toBe(new Date(1.5).toISOString())
  })

  it('reads back as Date.parse reads it (the SQLite log\'s time_ms), whatever the form, in and across seconds', () => {
    for (const ms of [0, 999, 1000, 1_764_609_267_001, 1_764_609_267_999, 1_764_609_268_000, 1_764_609_267_500, -1, -1001, 253_402_300_799_999, 253_402_300_800_000]) {
      expect(timeMsOf(new Date(ms).toISOString())).toBe(ms)
    }
    fc.assert(fc.property(fc.integer({ min: -62_000_000_000_000, max: 8_000_000_000_000_000 }), (ms) => {
      expect(timeMsOf(isoTime(ms))).toBe(Date.parse(isoTime(ms)))
    }))
    // Not isoTime's form: Date.parse decides, NaN included.
    // Hour 24: Date.parse takes only 24:00:00.000 (the next day's midnight).
    for (const text of ['2026-01-01T24:00:00.000Z', '2026-01-01T24:00:00.001Z', '2026-01-01 17:14:27.330Z']) expect(timeMsOf(text)).toStrictEqual(Date.parse(text))
    for (const text of ['2026-12-01T17:14:27Z', '2026-12-01T17:14:27.3Z', '2026-12-01T17:14:27.33xZ', '2026-12-01T17:14:27.-33Z', '2026-13-01T17:14:27.330Z', '2026-12-01 17:14:27.330Z', 'not a time at all, 24 ch', '']) {
      expect(timeMsOf(text)).toStrictEqual(Date.parse(text))
    }
  })
})
