// `--since 99999d` (and the console's `since`) was "neither a duration (1h) nor a time", though it
// is a duration: one past the 100 years a duration may be (the audit probe's left item).
import { expect, it } from 'vitest'
import { AuditQueryError, parseAuditQuery } from '../../../src/audit/index.ts'

const refusal = (since: string) => {
  try {
    parseAuditQuery({ since })
  } catch (err) {
    if (err instanceof AuditQueryError) return err.message
    throw err
  }
  return null
}

it('says a duration past its bound is one', () => {
  expect(refusal('99999d')).toBe('since "99999d": at most 36500d (100 years)')
})

it('says what else is neither a duration nor a time', () => {
  expect(refusal('the day before')).toBe('since "the day before" is neither a duration (1h) nor a time (2026-11-26T10:00:00Z)')
  expect(refusal('2026-13-01')).toBe('since "2026-13-01" is neither a duration (1h) nor a time (2026-11-26T10:00:00Z)')
  expect(refusal('36500d')).toBeNull()
})
