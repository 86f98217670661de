// Certificate revocation lists for client certificates (server.tls.client_crl): the PEM file read
// and each CRL's DER walked (RFC 5280 §5.1), for `bouncer check` (which CA signed it, is it current)
// and for the forwarded certificates' path (identity/x509.ts), which no TLS handshake checks: Node's
// X509Certificate has no CRL API. The handshake itself is given the same file (tls `crl`), and
// OpenSSL checks it there.
//
// What is read: the issuer's name, thisUpdate, nextUpdate and the revoked serials. Not read: delta
// CRLs, indirect CRLs, issuing distribution points, entry extensions (reasons); the handshake's
// OpenSSL reads them, this reader does not, so a PKI that relies on them is checked less strictly on
// the forwarded path. A CRL's signature is verified with Node's crypto against the CA that names it.
import { verify as verifySignature, type X509Certificate } from 'node:crypto'
import { children, oidText, tlv, type Tlv } from '../collections/index.ts'
import { readPemFile } from './server-tls.ts'

/** One CRL as the revocation checks use it. */
export interface RevocationList {
  /** The issuer's Name, as DER (issuerText writes it for people). */
  readonly issuer: Buffer
  /** The issuer's Name as OpenSSL compares it with a CA's subject (nameKey). */
  readonly issuerKey: string
  readonly thisUpdateMs: number
  /** null: the CRL names no next update (RFC 5280 requires one; OpenSSL accepts its absence). */
  readonly nextUpdateMs: number | null
  /** The revoked certificates' serial numbers, as serialKey writes them. */
  readonly revoked: ReadonlySet<string>
  /** What its signature covers, by which algorithm (an OID), and the signature. */
  readonly tbs: Buffer
  readonly algorithm: string
  readonly signature: Buffer
}

const PEM_CRL = /-----BEGIN X509 CRL-----([\s\S]*?)-----END X509 CRL-----/g

/** The signature algorithms a CRL's signature is verified by here: the hash Node's verify takes (null: the key's own, EdDSA). */
const SIGNATURE_HASHES: ReadonlyMap<string, string | null> = new Map([
  ['1.2.840.10045.4.3.1', 'sha224'], // ecdsa-with-SHA224
  ['1.2.840.10045.4.3.2', 'sha256'],
  ['1.2.840.10045.4.3.3', 'sha384'],
  ['1.2.840.10045.4.3.4', 'sha512'],
  ['1.2.840.113549.1.1.14', 'sha224'], // sha224WithRSAEncryption
  ['1.2.840.113549.1.1.11', 'sha256'],
  ['1.2.840.113549.1.1.12', 'sha384'],
  ['1.2.840.113549.1.1.13', 'sha512'],
  ['1.3.101.112', null], // Ed25519
  ['1.3.101.113', null], // Ed448
])

/** A serial number as one key whatever wrote it: upper-case hex without leading zeros (X509Certificate's serialNumber, or an INTEGER's octets). */
export function serialKey(hex: string): string {
  return hex.toUpperCase().replace(/^0+(?=.)/, '')
}

/**
 * One DER CRL. Throws RangeError when it is not one (a length past its end, a field of the wrong
 * type, a time that is no time): every read stays inside the buffer (collections/der.ts).
 */
export function parseCrl(der: Buffer): RevocationList {
  const list = tlv(der, 0, der.length)
  if (list.tag !== 0x30 || list.end !== der.length) throw new RangeError('not one DER SEQUENCE')
  const [tbs, algorithm, signature, extra] = children(der, list)
  if (tbs?.tag !== 0x30 || algorithm?.tag !== 0x30 || signature?.tag !== 0x03 || extra !== undefined) throw new RangeError('not a CertificateList (tbsCertList, signatureAlgorithm, signatureValue)')
  const fields = children(der, tbs)
  let at = fields[0]?.tag === 0x02 ? 1 : 0 // version, v2 (1) when present
  const [signatureField, issuer, thisUpdate] = [fields[at++], fields[at++], fields[at++]]
  if (signatureField?.tag !== 0x30 || issuer?.tag !== 0x30 || thisUpdate === undefined) throw new RangeError('tbsCertList without its signature, issuer and thisUpdate')
  const nextUpdate = fields[at] !== undefined && isTime(fields[at] as Tlv) ? fields[at++] : undefined
  const revoked = new Set<string>()
  if (fields[at]?.tag === 0x30) {
    for (const entry of children(der, fields[at++] as Tlv)) {
      const [serial, date] = entry.tag === 0x30 ? children(der, entry) : []
      if (serial?.tag !== 0x02 || serial.end === serial.start || date === undefined) throw new RangeError('a revoked certificate entry without its serial and date')
      timeOf(der, date)
      revoked.add(serialKey(der.subarray(serial.start, serial.end).toString('hex')))
    }
  }
  if (fields[at]?.tag === 0xa0) at++ // crlExtensions
  if (at !== fields.length) throw new RangeError('tbsCertList has fields after its extensions')
  const [id] = children(der, algorithm)
  if (id?.tag !== 0x06) throw new RangeError('signatureAlgorithm without an OID')
  // A BIT STRING's first octet is its unused bits: a signature has none.
  if (signature.end === signature.start || der[signature.start] !== 0) throw new RangeError('signatureValue is no whole octets')
  const issuerName = Buffer.from(der.subarray(signatureField.end, issuer.end)) // the element, its tag and length too: it follows signature
  return {
    issuer: issuerName,
    issuerKey: nameKey(issuerName), // OpenSSL refuses a CRL whose issuer it cannot put in this form, as this throws
    thisUpdateMs: timeOf(der, thisUpdate),
    nextUpdateMs: nextUpdate === undefined ? null : timeOf(der, nextUpdate),
    revoked,
    tbs: Buffer.from(der.subarray(list.start, tbs.end)),
    algorithm: oidText(der, id),
    signature: Buffer.from(der.subarray(signature.start + 1, signature.end)),
  }
}

/**
 * Every CRL of a PEM file, in order, and each one's PEM block (`pems`): Node's tls `crl` reads only
 * the first CRL of a PEM text, so the handshake is given them one by one (a file of two had every
 * certificate of the second's CA refused, UNABLE_TO_GET_CRL). A message saying why not.
 */
export function readCrls(path: string): { ok: true; pems: string[]; crls: RevocationList[] } | { ok: false; message: string } {
  const read = readPemFile(path)
  if (!read.ok) return read
  const blocks = [...read.pem.toString('latin1').matchAll(PEM_CRL)]
  if (blocks.length === 0) return { ok: false, message: `${path} holds no PEM CRL (-----BEGIN X509 CRL-----)` }
  const crls: RevocationList[] = []
  for (const [i, block] of blocks.entries()) {
    const body = (block[1] as string).replace(/\s+/g, '')
    try {
      if (!/^[A-Za-z0-9+/]*={0,2}$/.test(body)) throw new RangeError('not base64')
      crls.push(parseCrl(Buffer.from(body, 'base64')))
    } catch (err) {
      if (!(err instanceof RangeError)) throw err
      return { ok: false, message: `CRL ${i + 1} of ${path} cannot be read: ${err.message}` }
    }
  }
  return { ok: true, pems: blocks.map((block) => block[0]), crls }
}

/** The subject Name of a certificate, as DER: tbsCertificate's sixth field (after version, serial, signature, issuer, validity). */
export function subjectNameOf(certificate: X509Certificate): Buffer {
  const der = certificate.raw
  const [tbs] = children(der, tlv(der, 0, der.length))
  if (tbs === undefined) throw new RangeError('a certificate without tbsCertificate')
  const fields = children(der, tbs)
  const at = fields[0]?.tag === 0xa0 ? 5 : 4
  const [validity, subject] = [fields[at - 1], fields[at]]
  if (validity === undefined || subject?.tag !== 0x30) throw new RangeError('a certificate without its subject')
  return der.subarray(validity.end, subject.end) // the element, its tag and length too: it follows validity
}

/** String types whose values OpenSSL compares in a canonical form (x_name.c's ASN1_MASK_CANON), each read as its characters. */
const CANONICAL_STRINGS: ReadonlyMap<number, (value: Buffer) => string> = new Map([
  [0x0c, (value: Buffer) => UTF8.decode(value)], // UTF8String
  [0x13, (value: Buffer) => value.toString('latin1')], // PrintableString
  [0x14, (value: Buffer) => value.toString('latin1')], // T61String, which OpenSSL reads as Latin-1
  [0x16, (value: Buffer) => value.toString('latin1')], // IA5String
  [0x1a, (value: Buffer) => value.toString('latin1')], // VisibleString
  [0x1c, (value: Buffer) => universalString(value)], // UniversalString: UCS-4, big-endian
  [0x1e, (value: Buffer) => bmpString(value)], // BMPString: UCS-2, big-endian
])

const UTF8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true })

function bmpString(value: Buffer): string {
  if (value.length % 2 !== 0) throw new RangeError('a BMPString of an odd length')
  return Buffer.from(value).swap16().toString('utf16le')
}

function universalString(value: Buffer): string {
  if (value.length % 4 !== 0) throw new RangeError('a UniversalString whose length is no multiple of 4')
  const points: number[] = []
  for (let at = 0; at < value.length; at += 4) points.push(value.readUInt32BE(at))
  if (points.some((point) => point > 0x10ffff)) throw new RangeError('a UniversalString past Unicode')
  return String.fromCodePoint(...points)
}

/**
 * A Name (DER) as OpenSSL compares two (X509_NAME_cmp over x509_name_canon), so that a CRL is its
 * CA's where the handshake takes it to be: each string value as UTF-8, ASCII upper case lowered,
 * leading and trailing white space dropped and each run of it within one space (RFC 5280 §7.1
 * asks no more of an implementation); its string type no longer counts. A value of another type
 * is compared as its bytes, its tag too. The attributes of one RDN are a SET: their order does not
 * count. Throws RangeError when it is no Name, or a string is not of its type's characters
 * (OpenSSL refuses such a name).
 */
export function nameKey(name: Buffer): string {
  const rdns: string[][] = []
  try {
    for (const set of children(name, tlv(name, 0, name.length))) {
      if (set.tag !== 0x31) throw new RangeError('a relative distinguished name that is not a SET')
      const attributes: string[] = []
      for (const attribute of children(name, set)) {
        const [type, value, extra] = attribute.tag === 0x30 ? children(name, attribute) : []
        if (type?.tag !== 0x06 || value === undefined || extra !== undefined) throw new RangeError('an attribute without its type and value')
        const bytes = name.subarray(value.start, value.end)
        const read = CANONICAL_STRINGS.get(value.tag)
        attributes.push(`${oidText(name, type)}=${read === undefined ? `#${value.tag.toString(16)}:${bytes.toString('hex')}` : canonical(read(bytes))}`)
      }
      rdns.push(attributes.sort())
    }
  } catch (err) {
    if (err instanceof TypeError) throw new RangeError('a UTF8String that is not UTF-8', { cause: err }) // TextDecoder's
    throw err
  }
  return JSON.stringify(rdns)
}

/** OpenSSL's white space (ossl_isspace): its ASCII characters alone, not Unicode's. */
function canonical(text: string): string {
  return text.replace(/^[ \t\n\v\f\r]+|[ \t\n\v\f\r]+$/g, '').replace(/[ \t\n\v\f\r]+/g, ' ').replace(/[A-Z]+/g, (upper) => upper.toLowerCase())
}

/** A certificate's subject as nameKey writes it; its DER when it cannot (Node read it, so OpenSSL could). */
export function subjectKeyOf(certificate: X509Certificate): string {
  const subject = subjectNameOf(certificate)
  try {
    return nameKey(subject)
  } catch (err) {
    if (err instanceof RangeError) return `#${subject.toString('hex')}`
    throw err
  }
}

/** Did `ca` sign this CRL: its name is the CRL's issuer and its key verifies the signature. 'unsupported': an algorithm not verified here. */
export function crlSignedBy(crl: RevocationList, ca: X509Certificate): boolean | 'unsupported' {
  if (subjectKeyOf(ca) !== crl.issuerKey) return false
  const hash = SIGNATURE_HASHES.get(crl.algorithm)
  if (hash === undefined) return 'unsupported'
  try {
    return verifySignature(hash, crl.tbs, ca.publicKey, crl.signature)
  } catch {
    return false // a key that cannot verify this algorithm's signature
  }
}

/**
 * The CRLs each CA signed, by the CA's SHA-256 fingerprint (a CA renewed with its name and key
 * signs for both of its certificates). A CRL no CA of `cas` signed counts for none.
 */
export function crlsByCa(crls: readonly RevocationList[], cas: readonly X509Certificate[]): Map<string, RevocationList[]> {
  const byCa = new Map<string, RevocationList[]>()
  for (const ca of cas) {
    const signed = crls.filter((crl) => crlSignedBy(crl, ca) === true)
    if (signed.length > 0) byCa.set(ca.fingerprint256, signed)
  }
  return byCa
}

/** Attribute types a distinguished name is written with (RFC 4514 §3); others as their OID. */
const NAME_ATTRIBUTES: ReadonlyMap<string, string> = new Map([
  ['2.5.4.3', 'CN'], ['2.5.4.6', 'C'], ['2.5.4.7', 'L'], ['2.5.4.8', 'ST'], ['2.5.4.10', 'O'], ['2.5.4.11', 'OU'],
  ['0.9.2342.19200300.100.1.25', 'DC'], ['0.9.2342.19200300.100.1.1', 'UID'],
])

/**
 * A CRL's issuer for people, in the order of its DER as distinguishedName writes a certificate's
 * (`CN=Test CA, O=Example`); `(unreadable name)` when it is not a Name.
 */
export function issuerText(crl: RevocationList): string {
  const der = crl.issuer
  try {
    const parts: string[] = []
    for (const set of children(der, tlv(der, 0, der.length))) {
      for (const attribute of children(der, set)) {
        const [type, value] = children(der, attribute)
        if (type?.tag !== 0x06 || value === undefined) throw new RangeError('an attribute without its type and value')
        const oid = oidText(der, type)
        parts.push(`${NAME_ATTRIBUTES.get(oid) ?? oid}=${der.toString(value.tag === 0x0c ? 'utf8' : 'latin1', value.start, value.end)}`)
      }
    }
    return parts.join(', ')
  } catch (err) {
    if (err instanceof RangeError) return '(unreadable name)'
    throw err
  }
}

function isTime(field: Tlv): boolean {
  return field.tag === 0x17 || field.tag === 0x18
}

/** A UTCTime (YYMMDDHHMMSSZ, RFC 5280 §4.1.2.5.1: 50–99 are 19xx) or GeneralizedTime (YYYYMMDDHHMMSSZ), in epoch ms. */
function timeOf(der: Buffer, field: Tlv): number {
  const text = der.toString('latin1', field.start, field.end)
  const match = field.tag === 0x17 ? /^(\d{2})(\d{2})(\d{2})(\d{2})(\d{2})(\d{2})Z$/.exec(text) : field.tag === 0x18 ? /^(\d{4})(\d{2})(\d{2})(\d{2})(\d{2})(\d{2})Z$/.exec(text) : null
  if (match === null) throw new RangeError('a time that is neither UTCTime nor GeneralizedTime in UTC')
  const [year, month, day, hour, minute, second] = match.slice(1).map(Number) as [number, number, number, number, number, number]
  const fullYear = field.tag === 0x17 ? (year >= 50 ? 1900 + year : 2000 + year) : year
  const ms = Date.UTC(fullYear, month - 1, day, hour, minute, second)
  if (month < 1 || month > 12 || day < 1 || day > 31 || hour > 23 || minute > 59 || second > 59 || Number.isNaN(ms)) throw new RangeError('a time out of range')
  return ms
}
