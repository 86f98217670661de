// A time typed into the console's filters (or `bouncer audit --since/--until`) is read as the console
// shows times, in UTC, whatever the server's time zone: a time copied from the "time (UTC)" column
// finds its record on a server in New York.
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { rangeOf } from '../../../src/admin/console-api.ts'
import { parseAuditQuery, parseSince } from '../../../src/audit/search.ts'

const TEN = Date.UTC(2026, 10, 26, 10, 0, 0)
let zone: string | undefined

beforeEach(() => {
  zone = process.env.TZ
  process.env.TZ = 'America/New_York' // Node reads a changed TZ at once
})

afterEach(() => {
  if (zone === undefined) delete process.env.TZ
  else process.env.TZ = zone
})

describe('a typed time', () => {
  it('without a zone is UTC, as the console shows it', () => {
    expect(new Date(2026, 10, 26, 10).getTimezoneOffset()).toBe(300) // the zone took hold
    for (const text of ['2026-11-26 10:00:00', '2026-11-26T10:00:00', '2026-11-26 10:00', '2026-11-26T10:00:00.000']) {
      expect(parseSince(text), text).toBe(TEN)
      expect(parseAuditQuery({ since: text, until: text }), text).toMatchObject({ sinceMs: TEN, untilMs: TEN })
    }
    expect(rangeOf(new URLSearchParams({ since: '2026-11-26 10:00:00', until: '2026-11-26 11:00:00' }))).toEqual({ sinceMs: TEN, untilMs: TEN + 3_600_000 })
  })

  it('with a zone keeps it; a duration counts back from now; anything else is refused', () => {
    expect(parseSince('2026-11-26T10:00:00Z')).toBe(TEN)
    expect(parseSince('2026-11-26T05:00:00-05:00')).toBe(TEN)
    expect(parseSince('1h', TEN)).toBe(TEN - 3_600_000)
    expect(parseSince('yesterday-ish')).toBeUndefined()
    expect(() => parseAuditQuery({ until: 'soon' })).toThrow(/until "soon" is not a time/)
  })

  it('is read exactly or refused: a bare number or a date without its year is no day of 2001, a day its month lacks none of the next month', () => {
    for (const text of ['12', '1', 'Dec 1', '2026-02-30', '2026-11-31', '2026-11-26T25:00Z', '-010000-01-01T00:00:00Z', 'Thu, 26 Nov 2026 10:00:00 GMT']) {
      expect(() => parseAuditQuery({ until: text }), text).toThrow(`until "${text}" is not a time`)
      expect(() => rangeOf(new URLSearchParams({ since: '2026-11-26T09:00:00Z', until: text })), text).toThrow(`until "${text}" is not a time.`)
    }
    expect(parseSince('2024-02-29')).toBe(Date.UTC(2024, 1, 29))
    expect(parseSince('2026-11-26')).toBe(Date.UTC(2026, 10, 26))
    expect(parseSince('2026-11-26T11:00+0100')).toBe(TEN)
  })

  it('a date alone as until is that whole day: the console\'s ranges end at the next day\'s first instant, the search at the day\'s last millisecond', () => {
    const day = Date.UTC(2026, 10, 26)
    expect(rangeOf(new URLSearchParams({ since: '2026-11-26', until: '2026-11-26' }))).toEqual({ sinceMs: day, untilMs: day + 86_400_000 })
    expect(rangeOf(new URLSearchParams({ since: '2026-11-20', until: '2026-11-26' }))).toEqual({ sinceMs: Date.UTC(2026, 10, 20), untilMs: day + 86_400_000 })
    expect(parseAuditQuery({ since: '2026-11-26', until: '2026-11-26' })).toMatchObject({ sinceMs: day, untilMs: day + 86_400_000 - 1 })
    // A time keeps its instant; 31 whole days still fit the range's bound, 32 do not.
    expect(rangeOf(new URLSearchParams({ since: '2026-11-26', until: '2026-11-26T12:00Z' }))).toEqual({ sinceMs: day, untilMs: day + 43_200_000 })
    expect(rangeOf(new URLSearchParams({ since: '2026-11-01', until: '2026-12-01' })).untilMs).toBe(Date.UTC(2026, 11, 2))
    expect(() => rangeOf(new URLSearchParams({ since: '2026-11-01', until: '2026-12-02' }))).toThrow('The range is at most 31 days.')
  })
})
