import { describe, expect, it } from 'vitest'
import { MAX_ECHOED_CHARS, truncateClientValue } from '../../../src/errors/index.ts'

describe('truncateClientValue', () => {
  it('keeps a value up to the bound whole', () => {
    expect(truncateClientValue('svc-looker')).toBe('svc-looker')
    expect(truncateClientValue('x'.repeat(MAX_ECHOED_CHARS))).toBe('x'.repeat(MAX_ECHOED_CHARS))
  })

  it('cuts a longer one and says how long it was', () => {
    expect(truncateClientValue('x'.repeat(6_012))).toBe(`${'x'.repeat(MAX_ECHOED_CHARS)}…(truncated, 6012 chars)`)
    expect(truncateClientValue('abcdef', 3)).toBe('abc…(truncated, 6 chars)')
  })

  it('never cuts a surrogate pair in two', () => {
    const out = truncateClientValue(`ab😀cd`, 3)
    expect(out).toBe('ab…(truncated, 6 chars)')
    expect(out.isWellFormed()).toBe(true)
  })
})
