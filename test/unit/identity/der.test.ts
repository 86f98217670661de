// The one DER walk (src/collections/der.ts) that the certificate checks and the RFC 9440 field reader
// share, fed hostile lengths: whatever a peer sends, a read stays inside its bounds and fails as a
// RangeError (or null), never past the buffer nor as another kind of throw (a 500).
import { describe, expect, it } from 'vitest'
import { children, oidText, sequenceEnd, tlv } from '../../../src/collections/der.ts'

const bytes = (...octets: number[]) => Buffer.from(octets)

describe('tlv', () => {
  it('reads short and long lengths', () => {
    expect(tlv(bytes(0x04, 0x02, 0xaa, 0xbb), 0, 4)).toEqual({ tag: 0x04, start: 2, end: 4 })
    const long = Buffer.concat([bytes(0x04, 0x82, 0x01, 0x00), Buffer.alloc(256)])
    expect(tlv(long, 0, long.length)).toEqual({ tag: 0x04, start: 4, end: 260 })
  })

  it.each([
    ['no length octet', bytes(0x30), 1],
    ['a length past the end', bytes(0x30, 0x05, 0x00), 3],
    ['an indefinite length (BER, not DER)', bytes(0x30, 0x80, 0x00, 0x00), 4],
    ['more length octets than 4', bytes(0x30, 0x85, 0x00, 0x00, 0x00, 0x00, 0x01, 0x00), 8],
    ['length octets cut off', bytes(0x30, 0x84, 0x00, 0x00), 4],
    ['a length of 4 GiB', bytes(0x30, 0x84, 0xff, 0xff, 0xff, 0xff, 0x00), 7],
    ['a length past the limit, inside the buffer', bytes(0x30, 0x03, 0x00, 0x00, 0x00), 4],
  ])('refuses %s with a RangeError', (_, der, limit) => {
    expect(() => tlv(der, 0, limit)).toThrow(RangeError)
  })
})

describe('children', () => {
  it("lists a SEQUENCE's elements in order", () => {
    const der = bytes(0x30, 0x06, 0x02, 0x01, 0x05, 0x01, 0x01, 0xff)
    expect(children(der, tlv(der, 0, der.length))).toEqual([{ tag: 0x02, start: 4, end: 5 }, { tag: 0x01, start: 7, end: 8 }])
  })

  it("refuses a child that runs past its parent's end, though the buffer goes on", () => {
    const der = bytes(0x30, 0x03, 0x02, 0x03, 0x05, 0x06, 0x07)
    expect(() => children(der, tlv(der, 0, der.length))).toThrow(RangeError)
  })
})

describe('oidText', () => {
  it.each([
    ['2.5.29.19', bytes(0x06, 0x03, 0x55, 0x1d, 0x13)],
    ['1.2.840.113549.1.1.10', bytes(0x06, 0x09, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x0a)],
    ['2.999.3', bytes(0x06, 0x03, 0x88, 0x37, 0x03)],
  ])('reads %s', (text, der) => {
    expect(oidText(der, tlv(der, 0, der.length))).toBe(text)
  })
})

describe('sequenceEnd', () => {
  it('finds where each of two SEQUENCEs back to back ends', () => {
    const der = bytes(0x30, 0x01, 0x00, 0x30, 0x00)
    expect(sequenceEnd(der, 0)).toBe(3)
    expect(sequenceEnd(der, 3)).toBe(5)
  })

  it.each([
    ['another tag', bytes(0x04, 0x00), 0],
    ['a truncated SEQUENCE', bytes(0x30, 0x7f, 0x00), 0],
    ['an overlong length', bytes(0x30, 0x84, 0x7f, 0xff, 0xff, 0xff), 0],
    ['past the end of the buffer', bytes(0x30, 0x00), 2],
  ])('answers null for %s', (_, der, at) => {
    expect(sequenceEnd(der, at)).toBeNull()
  })
})
