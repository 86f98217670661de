// Found by a probe (helper): a dataset's query string and parameters at the edges of text and time.
// A string's length is counted in characters, not UTF-16 units; bytes that are not UTF-8 are refused,
// not turned into U+FFFD; the gateway's own names given twice are refused as a parameter's are; and a
// timestamp keeps its microseconds.
import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { RESERVED_QUERY, type DatasetParamConfig } from '../../../src/config/index.ts'
import { compileParams, readParams, readQuery } from '../../../src/datasets/params.ts'

const param = (config: Partial<DatasetParamConfig> & Pick<DatasetParamConfig, 'type'>): DatasetParamConfig => ({ list: false, max_items: 1_000, required: false, ...config })

function read(params: Record<string, DatasetParamConfig>, query: string) {
  return readParams(compileParams(params, new Set()), readQuery(query), {}, RESERVED_QUERY, Date.parse('2026-06-01T00:00:00Z'))
}

function refusal(run: () => unknown): { code: string; detail: string } {
  try {
    run()
  } catch (err) {
    return err as { code: string; detail: string }
  }
  throw new Error('not refused')
}

describe('a string parameter\'s length', () => {
  const params = { s: param({ type: 'string', min: 2, max: 10 }) }

  it('counts characters: ten 𝄞 (twenty UTF-16 units) are at most 10, eleven are not', () => {
    expect(read(params, `s=${encodeURIComponent('𝄞'.repeat(10))}`).get('s')).toBe('𝄞'.repeat(10))
    expect(refusal(() => read(params, `s=${encodeURIComponent('𝄞'.repeat(11))}`)).detail).toBe('Parameter "s": at most 10 characters.')
    expect(refusal(() => read(params, `s=${encodeURIComponent('𝄞')}`)).detail).toBe('Parameter "s": at least 2 characters.')
  })
})

describe('the query string\'s encoding', () => {
  it('refuses bytes that are not UTF-8 (%ff, a lone continuation byte, an encoded surrogate), naming the parameter', () => {
    for (const query of ['s=%ff', 's=ab%80', 's=%ED%A0%80', 'a=1&s=%C3']) {
      expect(refusal(() => readQuery(query))).toMatchObject({ code: 'invalid_parameter', detail: 'Parameter "s": not percent-encoded UTF-8.' })
    }
    expect(refusal(() => readQuery('%ff=1')).detail).toBe('Parameter "\uFFFD": its name is not percent-encoded UTF-8.')
  })

  it('keeps UTF-8, + as a space, and a % that encodes nothing, as before', () => {
    const query = readQuery('s=%E2%82%AC+100%&t=50%25')
    expect(query.get('s')).toBe('€ 100%')
    expect(query.get('t')).toBe('50%')
  })

  it("reads what URLSearchParams reads, in one pass, wherever that is UTF-8; refuses the rest (where it reads U+FFFD)", () => {
    // ASCII as sent: with a lone % before an escape, Node's URLSearchParams reads a literal é as U+FFFD (below).
    const piece = fc.constantFrom('a', 'b', '=', '&', '+', '?', '%', '%4', '%2B', '%25', '%3D', '%26', '%E2%82%AC', '%C3%A9', '%00', '%g1')
    fc.assert(fc.property(fc.array(piece, { maxLength: 12 }), (pieces) => {
      const text = pieces.join('')
      const expected = [...new URLSearchParams(text)]
      let read: Array<[string, string]>
      try {
        read = [...readQuery(text)]
      } catch (err) {
        expect(err).toMatchObject({ code: 'invalid_parameter' })
        expect(expected.flat().join('')).toContain('\uFFFD')
        return
      }
      expect(read).toEqual(expected)
    }), { numRuns: 1000 })
  })

  it('keeps a character sent unencoded after a % that encodes nothing (Node\'s URLSearchParams made it U+FFFD)', () => {
    expect(readQuery('s=%g%41é€').get('s')).toBe('%gAé€')
  })
})

describe('the gateway\'s own names', () => {
  it.each(['format=csv&format=json', 'cursor=x&cursor=x', 'format=csv&format=csv'])('%s given twice is 400, as a declared parameter is', (query) => {
    const name = query.split('=')[0] as string
    expect(refusal(() => read({}, query))).toMatchObject({ code: 'invalid_parameter', detail: `Parameter "${name}": one value expected, got several.` })
  })
})

describe('a timestamp parameter', () => {
  const params = { ts: param({ type: 'timestamp' }) }
  const ts = (text: string) => read(params, `ts=${encodeURIComponent(text)}`).get('ts')

  it('keeps microseconds, in UTC, and milliseconds as before when there are none', () => {
    expect(ts('2026-01-01T00:00:00.123456Z')).toBe('2026-01-01T00:00:00.123456Z')
    expect(ts('2026-01-01T01:00:00.000001+01:00')).toBe('2026-01-01T00:00:00.000001Z')
    expect(ts('1960-01-01 00:00:00.999999')).toBe('1960-01-01T00:00:00.999999Z')
    expect(ts('2026-01-01T00:00:00.123456000Z')).toBe('2026-01-01T00:00:00.123456Z')
    expect(ts('2026-01-01T00:00:00.5Z')).toBe('2026-01-01T00:00:00.500Z')
    expect(ts('2026-01-01T00:00:00Z')).toBe('2026-01-01T00:00:00.000Z')
  })

  it('refuses digits past the microsecond that are not 0: no rounding that compares wrongly', () => {
    expect(refusal(() => ts('2026-01-01T00:00:00.1234567Z')).detail).toBe('Parameter "ts": a timestamp to the microsecond at most: digits past the sixth after the second must be 0.')
  })

  it('checks min and max to the microsecond', () => {
    const bounded = { ts: param({ type: 'timestamp', min: '2026-01-01T00:00:00.000500Z', max: '2026-01-01T00:00:01Z' }) }
    const at = (text: string) => () => read(bounded, `ts=${encodeURIComponent(text)}`)
    expect(refusal(at('2026-01-01T00:00:00.000499Z')).detail).toBe('Parameter "ts": not before 2026-01-01T00:00:00.000500Z.')
    expect(at('2026-01-01T00:00:00.0005Z')()).toBeInstanceOf(Map)
    expect(refusal(at('2026-01-01T00:00:01.000001Z')).detail).toBe('Parameter "ts": not after 2026-01-01T00:00:01Z.')
  })
})
