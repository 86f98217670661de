// The DER walk (X.690 §8.1) that the certificate checks (identity/certificate-path.ts), the RFC 9440
// field reader (identity/client-cert-field.ts) and the CRL reader (config/crl.ts) share: an
// element's tag and bounds, a constructed element's children, an OID's dotted text. Every read stays
// inside the bounds it was given; malformed input throws RangeError, and only that (sequenceEnd
// answers null instead).

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

/** The elements inside `parent`'s value, in order; throws when one runs past the parent's end. */
export function children(der: Buffer, parent: Tlv): Tlv[] {
  const found: Tlv[] = []
  for (let at = parent.start; at < parent.end;) {
    const child = tlv(der, at, parent.end)
    found.push(child)
    at = child.end
  }
  return found
}

/** An OBJECT IDENTIFIER's value as dotted arcs (X.690 §8.19): `2.5.29.19`. */
export function oidText(der: Buffer, oid: Tlv): string {
  const arcs: number[] = []
  let value = 0
  for (let at = oid.start; at < oid.end; at++) {
    const octet = der[at] as number
    value = value * 128 + (octet & 0x7f)
    if ((octet & 0x80) === 0) {
      if (arcs.length === 0) arcs.push(value < 80 ? Math.floor(value / 40) : 2, value < 80 ? value % 40 : value - 80)
      else arcs.push(value)
      value = 0
    }
  }
  return arcs.join('.')
}

/**
 * Where the SEQUENCE starting at `at` ends (a certificate is one), or null when what is there is
 * not one or runs past the buffer.
 */
export function sequenceEnd(der: Buffer, at: number): number | null {
  if (der[at] !== 0x30) return null
  return unlessMalformed(() => tlv(der, at, der.length).end)
}

/**
 * What `read` answers, or null when the DER it walks is malformed (the walk's RangeError); anything
 * else it throws is a fault here, not the peer's, and goes on up.
 */
export function unlessMalformed<T>(read: () => T): T | null {
  try {
    return read()
  } catch (err) {
    if (err instanceof RangeError) return null
    throw err
  }
}
