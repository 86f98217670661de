// nameKey: a Name as OpenSSL compares two (x509_name_canon), by which a CRL is matched to its CA.
import { describe, expect, it } from 'vitest'
import { nameKey } from '../../src/config/crl.ts'

const CN = Buffer.from([0x06, 0x03, 0x55, 0x04, 0x03])
const O = Buffer.from([0x06, 0x03, 0x55, 0x04, 0x0a])
const der = (tag: number, body: Buffer) => Buffer.concat([Buffer.from([tag, body.length]), body])
const value = (tag: number, text: string, encoding: BufferEncoding = 'utf8') => der(tag, tag === 0x1e ? Buffer.from(text, 'utf16le').swap16() : Buffer.from(text, encoding))
const attribute = (type: Buffer, val: Buffer) => der(0x30, Buffer.concat([type, val]))
/** A Name of RDNs, each a SET of attributes in the order given. */
const name = (...rdns: Buffer[][]) => der(0x30, Buffer.concat(rdns.map((attributes) => der(0x31, Buffer.concat(attributes)))))
const utf8 = (text: string) => value(0x0c, text)

describe('nameKey', () => {
  const ca = name([attribute(CN, utf8('Test CA'))], [attribute(O, utf8('Bouncer tests'))])

  it('is one for the string types, case and white space OpenSSL folds', () => {
    expect(nameKey(name([attribute(CN, value(0x13, ' TEST\t  ca '))], [attribute(O, value(0x13, 'BOUNCER TESTS'))]))).toBe(nameKey(ca))
    expect(nameKey(name([attribute(CN, value(0x1e, 'test ca'))], [attribute(O, value(0x16, 'bouncer tests'))]))).toBe(nameKey(ca))
  })

  it('is one whatever the order of one RDN\'s attributes, and another for another order of RDNs', () => {
    const multi = (first: Buffer, second: Buffer) => nameKey(name([first, second]))
    expect(multi(attribute(CN, utf8('a')), attribute(O, utf8('b')))).toBe(multi(attribute(O, utf8('b')), attribute(CN, utf8('a'))))
    expect(nameKey(name([attribute(O, utf8('Bouncer tests'))], [attribute(CN, utf8('Test CA'))]))).not.toBe(nameKey(ca))
  })

  it('lowers ASCII alone, and keeps a type OpenSSL does not fold apart', () => {
    expect(nameKey(name([attribute(CN, utf8('É'))]))).not.toBe(nameKey(name([attribute(CN, utf8('é'))])))
    expect(nameKey(name([attribute(CN, value(0x12, '123'))]))).not.toBe(nameKey(name([attribute(CN, utf8('123'))]))) // NumericString
  })

  it('refuses a UTF8String that is not UTF-8, and bytes that are no Name, as RangeError', () => {
    expect(() => nameKey(name([attribute(CN, der(0x0c, Buffer.from([0xc3, 0x28])))]))).toThrow(RangeError)
    expect(() => nameKey(Buffer.from([0x30, 0x03, 0x04, 0x01, 0x00]))).toThrow(RangeError)
  })
})
