// Found by an adversarial probe: a `number` parameter was read with Number() and bound as the
// double it rounds to, without a word: `min=9007199254740993` was bound as 9007199254740992, and
// `amount >= :min` took a row the caller's value leaves out (`1e-400` became 0). An `int` beyond
// 2^53 is refused; a number is now too when the double is not the value as written.
import { expect, it } from 'vitest'
import { RESERVED_QUERY, type DatasetParamConfig } from '../../../src/config/index.ts'
import { compileParams, readParams, readQuery } from '../../../src/datasets/params.ts'

const params: Record<string, DatasetParamConfig> = { x: { type: 'number', list: false, max_items: 1_000, required: false } }

function read(value: string): unknown {
  try {
    return readParams(compileParams(params, new Set()), readQuery(`x=${encodeURIComponent(value)}`), {}, RESERVED_QUERY, 0).get('x')
  } catch (err) {
    return (err as { detail: string }).detail
  }
}

it('refuses a number a double does not hold as written, saying what it would have been', () => {
  expect(read('9007199254740993')).toBe('Parameter "x": a number a 64-bit float holds as written (this one would be 9007199254740992).')
  expect(read('12345678901234567.89')).toMatch(/would be 12345678901234568\)/)
  expect(read('1e-400')).toMatch(/would be 0\)/)
  expect(read('0.1000000000000000000001')).toMatch(/would be 0.1\)/)
})

it('takes every number a double holds, however it is written', () => {
  for (const [text, value] of [['0.1', 0.1], ['0.10', 0.1], ['.5', 0.5], ['5.', 5], ['+1.5e3', 1500], ['1E-7', 1e-7], ['0.30000000000000004', 0.1 + 0.2], ['-0', -0], ['0e99', 0], ['9007199254740992', 2 ** 53], ['1.7976931348623157e308', Number.MAX_VALUE], ['100', 100]] as const) {
    expect(read(text), text).toBe(value)
  }
})
