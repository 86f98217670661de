// server.tls.client_crl's reader (src/config/crl.ts): a real CRL made by `openssl ca -gencrl` reads as
// OpenSSL reads it (issuer, dates, the revoked serials, a signature its CA's key verifies), and
// hostile bytes (every truncation, every octet changed, lengths past the end, a file that is no CRL)
// fail as a RangeError or a message, never as another throw nor a read past the buffer.
import { X509Certificate } from 'node:crypto'
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { crlsByCa, crlSignedBy, issuerText, parseCrl, readCrls, serialKey, subjectNameOf, type RevocationList } from '../../src/config/crl.ts'
import { crlFindings } from '../../src/config/server-tls.ts'
import { createPki, type Issued, type TestPki } from '../helpers/certs.ts'
import { revoke, writeCrl } from '../helpers/crl.ts'

let pki: TestPki
let dir: string
let revoked: Issued
let kept: Issued
let der: Buffer
let crlFile: string
const thisUpdate = new Date('2026-01-02T03:04:05Z')
const nextUpdate = new Date('2051-06-07T08:09:10Z') // GeneralizedTime from 2050 on

beforeAll(() => {
  pki = createPki()
  dir = mkdtempSync(join(tmpdir(), 'tls3-crl-reader-'))
  revoked = pki.ca.issue('tls3-revoked', { usage: 'client', san: ['URI:spiffe://tls3/revoked'] })
  kept = pki.ca.issue('tls3-kept', { usage: 'client', san: ['URI:spiffe://tls3/kept'] })
  revoke(pki.ca, revoked)
  crlFile = join(dir, 'ca.crl.pem')
  const pem = writeCrl(pki.ca, crlFile, { thisUpdate, nextUpdate })
  der = Buffer.from(pem.replace(/-----[A-Z0-9 ]+-----|\s/g, ''), 'base64')
})

afterAll(() => {
  pki?.close()
  if (dir) rmSync(dir, { recursive: true, force: true })
})

const certificate = (issued: Issued) => new X509Certificate(readFileSync(issued.cert))

/** A parse's outcome, with any throw but a RangeError let through to fail the test. */
function outcome(bytes: Buffer): RevocationList | 'refused' {
  try {
    return parseCrl(bytes)
  } catch (err) {
    if (err instanceof RangeError) return 'refused'
    throw err
  }
}

describe('a CRL from openssl ca', () => {
  it('reads its issuer, dates and revoked serials, and verifies by its CA alone', () => {
    const crl = parseCrl(der)
    const ca = new X509Certificate(readFileSync(pki.ca.cert))
    expect({
      issuer: crl.issuer.equals(subjectNameOf(ca)),
      issuerText: issuerText(crl),
      thisUpdate: new Date(crl.thisUpdateMs).toISOString(),
      nextUpdate: new Date(crl.nextUpdateMs as number).toISOString(),
      revoked: [...crl.revoked],
      signedByItsCa: crlSignedBy(crl, ca),
      signedByAnother: crlSignedBy(crl, new X509Certificate(readFileSync(pki.otherCa.cert))),
    }).toEqual({
      issuer: true,
      issuerText: 'CN=Test CA, O=Bouncer tests',
      thisUpdate: thisUpdate.toISOString(),
      nextUpdate: nextUpdate.toISOString(),
      revoked: [serialKey(certificate(revoked).serialNumber)],
      signedByItsCa: true,
      signedByAnother: false,
    })
    expect(crl.revoked.has(serialKey(certificate(kept).serialNumber))).toBe(false)
    expect(crlsByCa([crl], [ca, new X509Certificate(readFileSync(pki.otherCa.cert))]).get(ca.fingerprint256)).toEqual([crl])
  })

  it('does not verify once its list of revoked serials is changed (a serial taken out)', () => {
    const crl = parseCrl(der)
    const serial = Buffer.from(serialKey(certificate(revoked).serialNumber), 'hex')
    const at = der.indexOf(serial)
    expect(at).toBeGreaterThan(0)
    const altered = Buffer.from(der)
    const last = at + serial.length - 1
    altered.writeUInt8(altered.readUInt8(last) ^ 0x01, last)
    const forged = parseCrl(altered)
    expect(forged.revoked.has(serialKey(certificate(revoked).serialNumber))).toBe(false)
    expect(crlSignedBy(forged, new X509Certificate(readFileSync(pki.ca.cert)))).toBe(false)
    expect(crlSignedBy(crl, new X509Certificate(readFileSync(pki.ca.cert)))).toBe(true)
  })

  it("is a check error when its CA's key did not sign it, and no CA then counts as having a CRL", () => {
    const serial = Buffer.from(serialKey(certificate(revoked).serialNumber), 'hex')
    const altered = Buffer.from(der)
    const last = der.indexOf(serial) + serial.length - 1
    altered.writeUInt8(altered.readUInt8(last) ^ 0x01, last)
    const ca = new X509Certificate(readFileSync(pki.ca.cert))
    expect(crlFindings([parseCrl(altered)], [ca], 'crl.pem', Date.now()).map((f) => `${f.severity}: ${f.message}`)).toEqual([
      'error: CRL 1 of crl.pem names "CN=Test CA, O=Bouncer tests" as its issuer, and that CA\'s key did not sign it: OpenSSL refuses it (CRL_SIGNATURE_FAILURE), and with it every certificate that CA signed',
      expect.stringMatching(/^error: "CN=Test CA, O=Bouncer tests" has no CRL in crl\.pem: /),
    ])
    expect(crlFindings([parseCrl(der)], [ca], 'crl.pem', Date.now())).toEqual([])
  })

  it('writes serial numbers as one key whatever their leading zeros or case', () => {
    expect([serialKey('00ab12'), serialKey('AB12'), serialKey('0000'), serialKey('0')]).toEqual(['AB12', 'AB12', '0', '0'])
  })
})

describe('hostile bytes', () => {
  it('every truncation is refused as a RangeError', () => {
    for (let length = 0; length < der.length; length++) expect(outcome(der.subarray(0, length)), `truncated to ${length}`).toBe('refused')
  })

  it('every octet changed to each of 0x00, 0x7f, 0x80, 0x84, 0xff parses or is refused, never another throw', () => {
    let refused = 0
    for (let at = 0; at < der.length; at++) {
      for (const value of [0x00, 0x7f, 0x80, 0x84, 0xff]) {
        const mutated = Buffer.from(der)
        mutated[at] = value
        if (outcome(mutated) === 'refused') refused++
      }
    }
    expect(refused).toBeGreaterThan(0)
  })

  it('lengths past the end, trailing bytes and empty input are refused', () => {
    const cases = {
      empty: Buffer.alloc(0),
      fourGigabytes: Buffer.from([0x30, 0x84, 0xff, 0xff, 0xff, 0xff, 0x30]),
      indefinite: Buffer.from([0x30, 0x80, 0x00, 0x00]),
      trailing: Buffer.concat([der, Buffer.from([0x00])]),
      notASequence: Buffer.from([0x04, 0x01, 0x00]),
      certificateNotCrl: new X509Certificate(readFileSync(pki.ca.cert)).raw,
    }
    expect(Object.fromEntries(Object.entries(cases).map(([name, bytes]) => [name, outcome(bytes)]))).toEqual(Object.fromEntries(Object.keys(cases).map((name) => [name, 'refused'])))
  })
})

describe('readCrls (the file)', () => {
  it('says why a file holds no CRL it can use', () => {
    const write = (name: string, text: string) => {
      const path = join(dir, name)
      writeFileSync(path, text)
      return path
    }
    const noCrl = write('no-crl.pem', readFileSync(pki.ca.cert, 'latin1'))
    const garbage = write('garbage.pem', '-----BEGIN X509 CRL-----\nMIIBAAAA\n-----END X509 CRL-----\n')
    const notBase64 = write('not-base64.pem', '-----BEGIN X509 CRL-----\n!!!!\n-----END X509 CRL-----\n')
    const second = write('second-bad.pem', `${readFileSync(crlFile, 'latin1')}-----BEGIN X509 CRL-----\nMAA=\n-----END X509 CRL-----\n`)
    const messages = [noCrl, garbage, notBase64, second, join(dir, 'missing.pem'), '/dev/zero'].map((path) => {
      const read = readCrls(path)
      return read.ok ? 'ok' : read.message
    })
    expect(messages).toEqual([
      `${noCrl} holds no PEM CRL (-----BEGIN X509 CRL-----)`,
      expect.stringMatching(new RegExp(`^CRL 1 of ${garbage} cannot be read: `)),
      `CRL 1 of ${notBase64} cannot be read: not base64`,
      expect.stringMatching(new RegExp(`^CRL 2 of ${second} cannot be read: `)),
      `cannot read ${join(dir, 'missing.pem')}: no such file`,
      'cannot read /dev/zero: it is not a regular file (a device or a socket)',
    ])
    const good = readCrls(crlFile)
    expect(good.ok && good.crls.length).toBe(1)
  })
})
