// The one helper every human-readable output passes values through.
import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { printable } from '../../../src/text/index.ts'

const UNPRINTABLE = /[\p{Cc}\p{Cf}\p{Cs}\p{Zl}\p{Zp}]/u

describe('printable', () => {
  it('writes controls, bidi and invisible characters in their visible \\u form', () => {
    expect(printable('a\x1b[2Kb\r\n\t\x07\x00\x7f')).toBe('a\\u001b[2Kb\\u000d\\u000a\\u0009\\u0007\\u0000\\u007f')
    expect(printable('\u009b\u202e\u2066\u200b\u200d\u00ad\ufeff\u2028')).toBe('\\u009b\\u202e\\u2066\\u200b\\u200d\\u00ad\\ufeff\\u2028')
    expect(printable('tag\u{e0041}')).toBe('tag\\u{e0041}')
    expect(printable('lone \ud800 surrogate')).toBe('lone \\ud800 surrogate')
  })

  it('leaves readable text alone, accents, CJK and emoji included', () => {
    expect(printable('svc-looker_reports@corp.example CORP\\alice Zoë 報告 🚀')).toBe('svc-looker_reports@corp.example CORP\\alice Zoë 報告 🚀')
  })

  it('never lets an unprintable character through, and escaping twice changes nothing', () => {
    fc.assert(fc.property(fc.string({ unit: 'binary' }), (text) => {
      const once = printable(text)
      expect(once).not.toMatch(UNPRINTABLE)
      expect(printable(once)).toBe(once)
    }))
  })
})
