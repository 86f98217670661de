// `bouncer audit --since 2026-11-26 --until 2026-11-26` said "no records match" over a day of
// 300,000 records (the audit probe, aud5): a date alone as `until` was the first instant of that
// day, so the day itself was left out. A date alone as `until` is now the whole of that day.
import { expect, it } from 'vitest'
import { parseAuditQuery } from '../../../src/audit/search.ts'

it('reads a date alone as until as the end of that day (UTC), a time as that time', () => {
  expect(parseAuditQuery({ since: '2026-11-26', until: '2026-11-26' })).toEqual({ limit: 50, sinceMs: Date.UTC(2026, 10, 26), untilMs: Date.UTC(2026, 10, 26, 23, 59, 59, 999) })
  expect(parseAuditQuery({ until: '2026-12-31' }).untilMs).toBe(Date.UTC(2026, 11, 31, 23, 59, 59, 999))
  expect(parseAuditQuery({ until: '2026-11-26T00:00' }).untilMs).toBe(Date.UTC(2026, 10, 26))
  expect(parseAuditQuery({ until: '2026-11-26T10:00:00+01:00' }).untilMs).toBe(Date.UTC(2026, 10, 26, 9))
  expect(() => parseAuditQuery({ since: '2026-11-27', until: '2026-11-26' })).toThrow('since must not be after until')
})
