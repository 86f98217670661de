// The writers at the edges of each kind's values, without a database: what PostgreSQL's text (and
// SQLite's, which may be any text) becomes in JSON, CSV and Arrow.
import { tableFromIPC } from 'apache-arrow'
import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { createWriter, type Format } from '../../../src/datasets/formats.ts'
import type { Column, Row } from '../../../src/datasets/source.ts'

async function write(format: Format, columns: Column[], rows: Row[]): Promise<Buffer> {
  const writer = await createWriter(format, columns)
  const parts = [writer.start(), writer.rows(rows), writer.end({ next: null, truncated: false })]
  return Buffer.concat(parts.map((part) => (typeof part === 'string' ? Buffer.from(part) : part)))
}

async function json(kind: Column['kind'], cells: string[]): Promise<unknown[]> {
  const body = await write('json', [{ name: 'v', kind }], cells.map((cell) => [cell]))
  return (JSON.parse(body.toString()) as { rows: Array<{ v: unknown }> }).rows.map((row) => row.v)
}

/** Arrow's stored values: Date32 days, timestamps' int64 milliseconds. */
async function arrow(kind: Column['kind'], cells: Array<string | null>): Promise<unknown[]> {
  const data = tableFromIPC(await write('arrow', [{ name: 'v', kind }], cells.map((cell) => [cell]))).getChild('v')!.data[0]!
  return cells.map((_, i) => (data.getValid(i) ? (data.values as ArrayLike<unknown>)[i] : null))
}

describe('JSON numbers', () => {
  it('a numeric is a number when JavaScript reads it back exactly, a string otherwise, as int8 beyond 2^53', async () => {
    expect(await json('decimal', ['1.50', '-0.000123', '123456789012345', '9007199254740991', '9007199254740991.00', '0.1234567890123450'])).toEqual([1.5, -0.000123, 123456789012345, 9007199254740991, 9007199254740991, 0.123456789012345])
    expect(await json('decimal', ['9007199254740993', '1000000000000000000', '1234567890.1234567', '0.' + '0'.repeat(400) + '1'])).toEqual(['9007199254740993', '1000000000000000000', '1234567890.1234567', '0.' + '0'.repeat(400) + '1'])
    expect(await json('bigint', ['9007199254740991', '1000000000000000000'])).toEqual([9007199254740991, '1000000000000000000'])
  })

  it('NaN and ±Infinity are strings, not null; text SQLite keeps in a REAL column is a string too', async () => {
    expect(await json('number', ['NaN', 'Infinity', '-Infinity', '1e+300', 'abc'])).toEqual(['NaN', 'Infinity', '-Infinity', 1e300, 'abc'])
    expect(await json('decimal', ['NaN', '-Infinity'])).toEqual(['NaN', '-Infinity'])
  })

  it('the numeric rule: every value sent as a number parses back to the same decimal', async () => {
    await fc.assert(
      fc.asyncProperty(fc.bigInt({ min: -(10n ** 30n), max: 10n ** 30n }), fc.integer({ min: 0, max: 20 }), async (unscaled, scale) => {
        const digits = (unscaled < 0n ? -unscaled : unscaled).toString().padStart(scale + 1, '0')
        const text = `${unscaled < 0n ? '-' : ''}${scale === 0 ? digits : `${digits.slice(0, -scale)}.${digits.slice(-scale)}`}`
        const [value] = await json('decimal', [text])
        // A string is the text itself; a number's shortest decimal is the same value.
        if (typeof value === 'string') expect(value).toBe(text)
        else expect(exact(String(value))).toBe(exact(text))
      }),
    )
  })
})

/** A decimal's value as digits and an exponent, trailing zeros dropped: equal text for equal values. */
function exact(text: string): string {
  const [mantissa = '', exponent = '0'] = text.toLowerCase().split('e')
  const negative = mantissa.startsWith('-')
  const [whole = '', fraction = ''] = mantissa.replace('-', '').split('.')
  let digits = (whole + fraction).replace(/^0+/, '')
  let power = Number(exponent) - fraction.length
  while (digits.endsWith('0')) {
    digits = digits.slice(0, -1)
    power++
  }
  return digits === '' ? '0' : `${negative ? '-' : ''}${digits}e${power}`
}

describe('JSON bytes, dates and times', () => {
  it('bytea is its hex digits without PostgreSQL\'s \\x (contentEncoding hex)', async () => {
    expect(await json('bytes', ['\\x0102ff', '\\x', 'ab'])).toEqual(['0102ff', '', '6162'])
  })

  it('dates and timestamps outside 0001–9999 take ISO 8601\'s expanded years; other text is left as it is', async () => {
    expect(await json('date', ['2026-01-31', '0001-01-01 BC', '0044-03-15 BC', '5874897-12-31', '4713-01-01 BC', 'infinity', 'junk BC'])).toEqual(['2026-01-31', '0000-01-01', '-000043-03-15', '+5874897-12-31', '-004712-01-01', 'infinity', 'junk BC'])
    expect(await json('timestamptz', ['2026-01-31 12:00:00+00', '0044-03-15 12:00:00.5+00 BC', '294276-12-31 23:59:59.999999+00', '-infinity'])).toEqual(['2026-01-31T12:00:00Z', '-000043-03-15T12:00:00.5Z', '+294276-12-31T23:59:59.999999Z', '-infinity'])
    expect(await json('timestamp', ['2026-01-31 12:00:00', '0044-03-15 12:00:00 BC'])).toEqual(['2026-01-31T12:00:00', '-000043-03-15T12:00:00'])
  })
})

describe('CSV', () => {
  it('an empty string is "" and NULL an empty field, in every kind', async () => {
    const body = await write('csv', [{ name: 's', kind: 'string' }, { name: 'n', kind: 'bigint' }, { name: 't', kind: 'timestamp' }], [['', '', ''], [null, null, null]])
    expect(body.toString()).toBe('s,n,t\r\n"","",""\r\n,,\r\n')
  })
})

describe('Arrow dates and timestamps', () => {
  it('Date32 and milliseconds agree with JavaScript\'s proleptic Gregorian calendar, BC years included', async () => {
    await fc.assert(
      fc.asyncProperty(fc.integer({ min: -4712, max: 275_000 }), fc.integer({ min: 1, max: 12 }), fc.integer({ min: 1, max: 28 }), fc.integer({ min: 0, max: 86_399_999 }), async (year, month, day, msOfDay) => {
        const date = new Date(0)
        date.setUTCFullYear(year, month - 1, day)
        date.setUTCHours(0, 0, 0, msOfDay)
        // PostgreSQL's text: 1 BC is year 0 here, `0001 BC` there.
        const pgYear = `${String(year > 0 ? year : 1 - year).padStart(4, '0')}`
        const bc = year > 0 ? '' : ' BC'
        const time = date.toISOString().slice(-13, -1) // HH:MM:SS.mmm
        const [days] = await arrow('date', [`${pgYear}-${String(month).padStart(2, '0')}-${String(day).padStart(2, '0')}${bc}`])
        const [ms] = await arrow('timestamptz', [`${pgYear}-${String(month).padStart(2, '0')}-${String(day).padStart(2, '0')} ${time}+00${bc}`])
        expect(days).toBe(Math.floor(date.getTime() / 86_400_000))
        expect(ms).toBe(BigInt(date.getTime()))
      }),
    )
  })

  it('infinity is the type\'s largest value and -infinity its smallest; text that is no date is null, as before', async () => {
    expect(await arrow('date', ['infinity', '-infinity', 'soon', null, '2026-01-31 12:00:00'])).toEqual([2_147_483_647, -2_147_483_648, null, null, 20_484])
    expect(await arrow('timestamp', ['infinity', '-infinity', 'soon', '2026-01-31T12:00:00+02:00', '2026-01-31 12:00', '1969-12-31 23:59:59.9995'])).toEqual([2n ** 63n - 1n, -(2n ** 63n), null, 1_769_853_600_000n, 1_769_860_800_000n, -1n])
  })
})
