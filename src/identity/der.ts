// One DER element's tag and bounds (X.690 §8.1), read where the certificate checks and the RFC 9440
// field reader need it; malformed input throws RangeError, and only that.

export interface Tlv {
  readonly tag: number
  /** Where the value starts and ends. */
  readonly start: number
  readonly end: number
}

/** One DER element at `at` (X.690 §8.1, definite lengths only); throws on what runs past `limit`. */
export function tlv(der: Buffer, at: number, limit: number): Tlv {
  if (at + 2 > limit) throw new RangeError('truncated')
  const tag = der[at] as number
  let length = der[at + 1] as number
  let start = at + 2
  if (length & 0x80) {
    const octets = length & 0x7f
    if (octets === 0 || octets > 4 || start + octets > limit) throw new RangeError('bad length')
    length = 0
    for (let i = 0; i < octets; i++) length = length * 256 + (der[start + i] as number)
    start += octets
  }
  if (start + length > limit) throw new RangeError('truncated')
  return { tag, start, end: start + length }
}
