// A client certificate's chain, checked as OpenSSL checks one in a TLS handshake for a client
// (X509_verify_cert with the sslclient purpose at security level 2), where no handshake did: a
// certificate forwarded by a TLS-terminating proxy (RFC 9440), and a handshake's certificate refused
// only for its dates (OpenSSL names the last fault it met, so its verdict alone does not say the rest
// was sound). From the leaf up, each certificate must be signed by the next (its name, key identifier
// and signature), the next found among the trusted CAs first, then among those sent with it; it ends
// at a trusted CA (and goes on through trusted CAs to their root). The verdicts carry OpenSSL's
// names, so that one table (x509.ts) words them for both paths.
//
// Where it differs from the handshake's check, on purpose or not done:
// - Any trusted certificate is an anchor (OpenSSL's X509_V_FLAG_PARTIAL_CHAIN): an intermediate in an
//   issuer's ca needs no root beside it, as the README says.
// - Dates are not checked here: the caller checks them on every request, as a connection's
//   certificate may expire while it is open (the choice among trusted CAs of one name does read them).
// - Revocation is not checked here (x509.ts checks server.tls.client_crl on the path this returns;
//   OCSP nowhere); name constraints are not evaluated, so a chain through a
//   CA that has them is refused; certificate policies are not evaluated.
import type { KeyObject, X509Certificate } from 'node:crypto'
import { children, oidText, tlv, unlessMalformed } from '../collections/index.ts'

/** The chain from the leaf up to its trust anchor (and on to the anchor's root, where trusted), or OpenSSL's name for why not. */
export type PathVerdict = { readonly ok: true; readonly path: readonly X509Certificate[] } | { readonly ok: false; readonly code: string }

/** Chains are short; a longer one is a loop or a flood in what the peer sent. */
export const MAX_CHAIN_DEPTH = 10

const CLIENT_AUTH = '1.3.6.1.5.5.7.3.2'

/** The extensions OpenSSL's verification understands (X509_supported_extension), by OID: only these may be critical. */
const OID = {
  keyUsage: '2.5.29.15',
  subjectAltName: '2.5.29.17',
  basicConstraints: '2.5.29.19',
  nameConstraints: '2.5.29.30',
  certificatePolicies: '2.5.29.32',
  policyMappings: '2.5.29.33',
  policyConstraints: '2.5.29.36',
  extKeyUsage: '2.5.29.37',
  inhibitAnyPolicy: '2.5.29.54',
  netscapeCertType: '2.16.840.1.113730.1.1',
} as const

/**
 * The critical extensions OpenSSL's verification understands (X509_supported_extension). A critical
 * extension outside it refuses the certificate (RFC 5280 §4.2), on either path. Name constraints are
 * understood, and refused all the same below: this path does not evaluate them.
 */
const UNDERSTOOD_CRITICAL: ReadonlySet<string> = new Set(Object.values(OID))

/** keyUsage bits of its first octet (RFC 5280 §4.2.1.3). */
const KEY_USAGE = { digitalSignature: 0x80, keyAgreement: 0x08, keyCertSign: 0x04 } as const

/** Netscape cert type bits (OpenSSL's NS_SSL_CLIENT, NS_ANY_CA). */
const NETSCAPE_CERT_TYPE = { sslClient: 0x80, anyCa: 0x07 } as const

export function verifyCertificatePath(leaf: X509Certificate, presented: readonly X509Certificate[], trusted: readonly X509Certificate[], nowMs: number = Date.now()): PathVerdict {
  const trustedPrints = new Set(trusted.map((ca) => ca.fingerprint256))
  const path: X509Certificate[] = [leaf]
  let anchored = trustedPrints.has(leaf.fingerprint256)
  let current = leaf
  while (path.length < MAX_CHAIN_DEPTH && !issuedBy(current, current)) {
    // Above a trusted CA only trusted ones count: what the peer sent cannot lengthen a trusted chain.
    const parent = issuerAmong(current, trusted, nowMs) ?? (anchored ? undefined : issuerAmong(current, presented, nowMs))
    if (parent === undefined || path.some((seen) => seen.fingerprint256 === parent.fingerprint256)) break
    path.push(parent)
    current = parent
    anchored ||= trustedPrints.has(parent.fingerprint256)
  }
  if (!anchored) {
    if (path.length === 1) return { ok: false, code: issuedBy(leaf, leaf) ? 'DEPTH_ZERO_SELF_SIGNED_CERT' : 'UNABLE_TO_GET_ISSUER_CERT_LOCALLY' }
    return { ok: false, code: issuedBy(current, current) ? 'SELF_SIGNED_CERT_IN_CHAIN' : 'UNABLE_TO_GET_ISSUER_CERT' }
  }
  const refused = refusedByExtensions(path) ?? refusedBySecurityLevel(path)
  return refused === null ? { ok: true, path } : { ok: false, code: refused }
}

/**
 * OpenSSL's default security level, 2 (112 bits), which the gateway's TLS listener keeps: below it,
 * RSA and DSA keys under 2048 bits, EC keys under 224, and signatures by MD2, MD4, MD5 or SHA-1
 * (OpenSSL 3 counts a SHA-1 certificate signature as 63 bits); SHA-224 and up pass, as in the handshake.
 */
const MIN_SECURE_BITS = { rsa: 2048, ec: 224 } as const

const WEAK_SIGNATURE_OIDS: ReadonlySet<string> = new Set([
  '1.2.840.113549.1.1.2', // md2WithRSAEncryption
  '1.2.840.113549.1.1.3', // md4WithRSAEncryption
  '1.2.840.113549.1.1.4', // md5WithRSAEncryption
  '1.2.840.113549.1.1.5', // sha1WithRSAEncryption
  '1.3.14.3.2.29', // sha1WithRSASignature (OIW)
  '1.2.840.10040.4.3', // dsa-with-sha1
  '1.2.840.10045.4.1', // ecdsa-with-SHA1
])

const RSASSA_PSS = '1.2.840.113549.1.1.10'
/** Hashes under 112 bits of collision security, as an RSASSA-PSS signature's parameters name them. */
const WEAK_HASH_OIDS: ReadonlySet<string> = new Set([
  '1.3.14.3.2.26', // SHA-1 (RSASSA-PSS's default when its parameters name none)
  '1.2.840.113549.2.5', // MD5
])

/** OpenSSL's check_auth_level: every key in the chain, and every signature but the trust anchor's own. */
function refusedBySecurityLevel(path: readonly X509Certificate[]): string | null {
  for (const [depth, certificate] of path.entries()) {
    if (!keyStrongEnough(certificate)) return depth === 0 ? 'EE_KEY_TOO_SMALL' : 'CA_KEY_TOO_SMALL'
    if (depth === path.length - 1) continue
    const weak = unlessMalformed(() => weakSignature(certificate.raw))
    if (weak === null) return 'CERT_UNREADABLE'
    if (weak) return 'CA_MD_TOO_WEAK'
  }
  return null
}

/**
 * Whether the certificate's own signature is by a hash under the security level, read from its DER
 * (Certificate → signatureAlgorithm): X509Certificate's signatureAlgorithmOid is Node 24's, and on
 * Node 22 (which the package allows) it read undefined, so no signature was ever weak (a review).
 * An RSASSA-PSS signature has one OID whatever its hash: the hash is in its parameters, SHA-1 when
 * they name none.
 */
function weakSignature(der: Buffer): boolean {
  const [, algorithm] = children(der, tlv(der, 0, der.length))
  if (algorithm === undefined) throw new RangeError('no signatureAlgorithm')
  const [id, parameters] = children(der, algorithm)
  if (id === undefined || id.tag !== 0x06) throw new RangeError('signatureAlgorithm without an OID')
  const oid = oidText(der, id)
  if (oid !== RSASSA_PSS) return WEAK_SIGNATURE_OIDS.has(oid)
  // RSASSA-PSS-params: SEQUENCE { [0] hashAlgorithm DEFAULT sha1, … } (RFC 4055 §3.1).
  const hash = parameters?.tag === 0x30 ? children(der, parameters).find((field) => field.tag === 0xa0) : undefined
  if (hash === undefined) return true
  const hashOid = children(der, tlv(der, hash.start, hash.end))[0]
  if (hashOid === undefined || hashOid.tag !== 0x06) throw new RangeError('RSASSA-PSS hashAlgorithm without an OID')
  return WEAK_HASH_OIDS.has(oidText(der, hashOid))
}

function keyStrongEnough(certificate: X509Certificate): boolean {
  let key: KeyObject
  try {
    key = certificate.publicKey
  } catch {
    return false // a key OpenSSL cannot decode: it counts as none, too small (as OpenSSL's check does), not a 500
  }
  const details = key.asymmetricKeyDetails ?? {}
  if (key.asymmetricKeyType === 'rsa' || key.asymmetricKeyType === 'rsa-pss') return (details.modulusLength ?? 0) >= MIN_SECURE_BITS.rsa
  // DSA's security is the smaller of its modulus's and its subgroup's (q: 160 bits is 80 of security).
  if (key.asymmetricKeyType === 'dsa') return (details.modulusLength ?? 0) >= MIN_SECURE_BITS.rsa && (details.divisorLength ?? 0) >= MIN_SECURE_BITS.ec
  // A named curve's name carries its size (prime256v1, secp384r1, brainpoolP160r1, sect163k1);
  // a curve whose name does not (SM2) is refused: the stricter side.
  if (key.asymmetricKeyType === 'ec') return Number(/\d{3}/.exec(details.namedCurve ?? '')?.[0] ?? 0) >= MIN_SECURE_BITS.ec
  return true // Ed25519, Ed448: 128 bits and up
}

/** Is `child` signed by `parent`: its issuer name and key identifier, then the signature? */
function issuedBy(child: X509Certificate, parent: X509Certificate): boolean {
  try {
    return child.checkIssued(parent) && child.verify(parent.publicKey)
  } catch {
    return false // a key or signature algorithm OpenSSL cannot use: no signature of that key holds
  }
}

/**
 * OpenSSL's find_issuer: of the certificates that signed `child` (a CA renewed with its name and key
 * is two), one within its dates, else the one that expires last — not the first listed, which may be
 * the expired copy a rollover left beside its renewal.
 */
function issuerAmong(child: X509Certificate, candidates: readonly X509Certificate[], nowMs: number): X509Certificate | undefined {
  let best: X509Certificate | undefined
  for (const candidate of candidates) {
    if (candidate.fingerprint256 === child.fingerprint256 || !issuedBy(child, candidate)) continue
    if (Date.parse(candidate.validFrom) <= nowMs && nowMs <= Date.parse(candidate.validTo)) return candidate
    if (best === undefined || Date.parse(candidate.validTo) > Date.parse(best.validTo)) best = candidate
  }
  return best
}

/** OpenSSL's check_chain_extensions and the sslclient purpose, over a chain already linked by signatures. */
function refusedByExtensions(path: readonly X509Certificate[]): string | null {
  let intermediatesBelow = 0
  for (const [depth, certificate] of path.entries()) {
    const extensions = unlessMalformed(() => extensionsOf(certificate.raw))
    if (extensions === null) return 'CERT_UNREADABLE'
    if (extensions.critical.some((oid) => !UNDERSTOOD_CRITICAL.has(oid))) return 'UNHANDLED_CRITICAL_EXTENSION'
    // The sslclient purpose: an extended key usage, where there is one, names clientAuth — for the CAs too.
    const purposes = certificate.keyUsage
    if (purposes !== undefined && !purposes.includes(CLIENT_AUTH)) return 'INVALID_PURPOSE'
    if (depth === 0) {
      if (extensions.keyUsage !== null && (extensions.keyUsage & (KEY_USAGE.digitalSignature | KEY_USAGE.keyAgreement)) === 0) return 'KEYUSAGE_NO_DIGITAL_SIGNATURE'
      // OpenSSL's ns_reject: a Netscape cert type, where there is one, names SSL client.
      // OpenSSL says INVALID_PURPOSE; the name here says which usage, for the client's operator.
      if (extensions.netscapeCertType !== null && (extensions.netscapeCertType & NETSCAPE_CERT_TYPE.sslClient) === 0) return 'NS_CERT_TYPE_NO_SSL_CLIENT'
      continue
    }
    // Name constraints bind the names of every certificate below; this path does not evaluate them, so it refuses rather than ignore them.
    if (extensions.nameConstraints) return 'NAME_CONSTRAINTS_UNCHECKED'
    const top = depth === path.length - 1
    const selfSignedRoot = top && issuedBy(certificate, certificate)
    // OpenSSL 3 holds every CA below the top to X509_STRICT: basicConstraints with CA:TRUE. A CA
    // only by keyUsage or a Netscape type may stand at the top alone (a review: a CA-issued
    // certificate with keyCertSign and no basicConstraints could sign any identity under it).
    if (top ? !isCa(certificate, extensions) : !(extensions.basicConstraints && certificate.ca)) return 'INVALID_CA'
    if (extensions.pathLength !== null && intermediatesBelow > extensions.pathLength) return 'PATH_LENGTH_EXCEEDED'
    if (!selfSignedRoot) intermediatesBelow++
  }
  return null
}

/**
 * May this certificate sign others — OpenSSL's check_ca, trusted or not: a keyUsage must have
 * keyCertSign; basicConstraints, where present, decides; without it only a v1 self-signed root, a
 * keyUsage (with keyCertSign) or a Netscape CA type make a CA. A trusted v3 client certificate
 * without basicConstraints is no CA: whoever holds its key could otherwise sign any identity under it.
 */
function isCa(certificate: X509Certificate, extensions: Extensions): boolean {
  if (extensions.keyUsage !== null && (extensions.keyUsage & KEY_USAGE.keyCertSign) === 0) return false
  if (extensions.basicConstraints) return certificate.ca
  if (extensions.version1 && issuedBy(certificate, certificate)) return true
  if (extensions.keyUsage !== null) return true
  return extensions.netscapeCertType !== null && (extensions.netscapeCertType & NETSCAPE_CERT_TYPE.anyCa) !== 0
}

/** What the chain checks read of a certificate's extensions (RFC 5280 §4.1, §4.2). */
interface Extensions {
  /** An X.509 v1 certificate (no version field, or 0): it has no extensions. */
  readonly version1: boolean
  readonly critical: readonly string[]
  /** The first octet of keyUsage's bits; null without the extension. */
  readonly keyUsage: number | null
  readonly basicConstraints: boolean
  /** basicConstraints' pathLenConstraint; null when absent. */
  readonly pathLength: number | null
  readonly nameConstraints: boolean
  /** The first octet of the Netscape cert type's bits; null without the extension. */
  readonly netscapeCertType: number | null
}

/** The extensions of a DER certificate: Certificate → tbsCertificate → [3] → Extension (OID, critical, value). */
function extensionsOf(der: Buffer): Extensions {
  const certificate = tlv(der, 0, der.length)
  const tbs = children(der, certificate)[0]
  const fields = tbs === undefined ? [] : children(der, tbs)
  const version = fields[0]?.tag === 0xa0 ? tlv(der, fields[0].start, fields[0].end) : undefined
  const version1 = version === undefined || (version.end - version.start === 1 && der[version.start] === 0)
  const wrapper = fields.find((field) => field.tag === 0xa3)
  const critical: string[] = []
  let keyUsage: number | null = null
  let basicConstraints = false
  let pathLength: number | null = null
  let nameConstraints = false
  let netscapeCertType: number | null = null
  const sequence = wrapper === undefined ? undefined : children(der, wrapper)[0]
  if (wrapper !== undefined && sequence === undefined) throw new RangeError('an empty extensions wrapper')
  const list = sequence === undefined ? [] : children(der, sequence)
  for (const extension of list) {
    const [id, second, third] = children(der, extension)
    if (id === undefined || id.tag !== 0x06) throw new RangeError('extension without an OID')
    const oid = oidText(der, id)
    const isCritical = second?.tag === 0x01 && der[second.start] !== 0
    const value = second?.tag === 0x04 ? second : third
    if (value === undefined || value.tag !== 0x04) throw new RangeError('extension without a value')
    if (isCritical) critical.push(oid)
    if (oid === OID.keyUsage) {
      const bits = tlv(der, value.start, value.end)
      keyUsage = bits.end - bits.start >= 2 ? (der[bits.start + 1] as number) : 0
    } else if (oid === OID.basicConstraints) {
      basicConstraints = true
      const length = children(der, tlv(der, value.start, value.end)).find((field) => field.tag === 0x02)
      if (length !== undefined) {
        // An INTEGER is 1 octet or more; a negative one (its top bit set) OpenSSL refuses as an invalid extension.
        const octets = length.end - length.start
        if (octets < 1 || ((der[length.start] as number) & 0x80) !== 0) throw new RangeError('basicConstraints pathLenConstraint is no length')
        pathLength = octets > 4 ? Number.MAX_SAFE_INTEGER : der.readUIntBE(length.start, octets)
      }
    } else if (oid === OID.nameConstraints) {
      nameConstraints = true
    } else if (oid === OID.netscapeCertType) {
      const bits = tlv(der, value.start, value.end)
      netscapeCertType = bits.end - bits.start >= 2 ? (der[bits.start + 1] as number) : 0
    }
  }
  return { version1, critical, keyUsage, basicConstraints, pathLength, nameConstraints, netscapeCertType }
}
