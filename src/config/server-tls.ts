// The PEM files of server.tls and of x509 issuers, read and checked: at `bouncer check` (a broken
// or mismatched certificate and key is an error with the file's line), at start, at a reload and
// when the files change (the gateway keeps the running certificate then, and says why). One reader
// for all of them, so what `check` accepts is exactly what the listener loads.
import { createPrivateKey, X509Certificate, type KeyObject } from 'node:crypto'
import { createSecureContext } from 'node:tls'
import { readRegularFile } from '../collections/index.ts'
import { crlSignedBy, issuerText, readCrls, subjectKeyOf, type RevocationList } from './crl.ts'
import type { ConfigPath, Finding } from './diagnostics.ts'
import type { TlsConfig } from './schema.ts'

/** What a TLS listener is built from, read and checked. */
export interface TlsMaterial {
  /** The certificate chain as read (PEM), the leaf first. */
  readonly cert: Buffer
  readonly key: Buffer
  readonly leaf: X509Certificate
  /** server.tls.client_ca as read, and its certificates; null when client certificates are not asked for. */
  readonly clientCa: Buffer | null
  readonly clientCas: readonly X509Certificate[]
  /** server.tls.client_crl's CRLs as PEM, one each (for the handshake: null when no client certificate is asked for), and as read (for forwarded certificates too). */
  readonly clientCrl: readonly string[] | null
  readonly clientCrls: readonly RevocationList[]
}

export type TlsRead = { ok: true; material: TlsMaterial; warnings: Finding[] } | { ok: false; errors: Finding[]; warnings: Finding[] }

const PEM_CERTIFICATE = /-----BEGIN CERTIFICATE-----[\s\S]*?-----END CERTIFICATE-----/g

function describeReadError(err: unknown): string {
  const code = (err as NodeJS.ErrnoException).code
  if (code === 'ENOENT') return 'no such file'
  if (code === 'EACCES') return 'permission denied (EACCES)'
  if (code === 'EISDIR') return 'it is a directory, not a file (EISDIR)'
  return (err as Error).message
}

/** More than any PEM file holds: a bundle of every public root CA is ~250 KB. */
const MAX_PEM_BYTES = 10 * 1024 * 1024

/**
 * A PEM file's bytes, read only if it is a regular file of at most MAX_PEM_BYTES. Read as it came,
 * `key: /dev/zero` took `bouncer check` past 20 GB of memory, and a named pipe nobody writes
 * blocked it for ever: at a start or a reload, the gateway's own thread (found by an adversarial
 * probe). A device or socket is refused unread; a named pipe (a program feeding the file) is read
 * as a file is, its writer waited for, its text bounded as a file's size is.
 */
export function readPemFile(path: string): { ok: true; pem: Buffer } | { ok: false; message: string } {
  const read = readRegularFile(path, MAX_PEM_BYTES, { pipes: 'read' })
  if (read.ok) return { ok: true, pem: read.bytes }
  if (read.reason === 'directory') return { ok: false, message: `cannot read ${path}: it is a directory, not a file (EISDIR)` }
  if (read.reason === 'not regular') return { ok: false, message: `cannot read ${path}: it is not a regular file (a device or a socket)` }
  if (read.reason === 'too large') return { ok: false, message: `cannot read ${path}: it holds ${read.size.toLocaleString('en')} bytes, more than any PEM file (at most ${MAX_PEM_BYTES / 1024 / 1024} MB)` }
  return { ok: false, message: `cannot read ${path}: ${describeReadError(read.error)}` }
}

/** Every certificate of a PEM file, in order; a message saying why not. */
export function readCertificates(path: string): { ok: true; pem: Buffer; certificates: X509Certificate[] } | { ok: false; message: string } {
  const read = readPemFile(path)
  if (!read.ok) return read
  const { pem } = read
  const blocks = pem.toString('latin1').match(PEM_CERTIFICATE) ?? []
  if (blocks.length === 0) return { ok: false, message: `${path} holds no PEM certificate (-----BEGIN CERTIFICATE-----)` }
  const certificates: X509Certificate[] = []
  for (const [i, block] of blocks.entries()) {
    try {
      certificates.push(new X509Certificate(block))
    } catch (err) {
      return { ok: false, message: `certificate ${i + 1} of ${path} cannot be read: ${(err as Error).message}` }
    }
  }
  return { ok: true, pem, certificates }
}

/** `CN=api.example.com, O=Example` (RFC 4514 order is the reverse of Node's lines; this is for people). */
export function distinguishedName(certificateName: string): string {
  return certificateName.split('\n').join(', ')
}

/**
 * Which x509 issuer each CA belongs to, by its SHA-256 fingerprint: the first issuer whose ca holds
 * it. A client certificate is the issuer's whose CA its chain reaches (identity/x509.ts), and a CA
 * two issuers name is the first's (explain reads it so, and `bouncer check` refuses the second).
 * In the issuers' order, then each one's CAs'.
 */
export function caOwners<I extends { readonly cas: readonly X509Certificate[] }>(issuers: readonly I[]): Map<string, { issuer: I; ca: X509Certificate }> {
  const owners = new Map<string, { issuer: I; ca: X509Certificate }>()
  for (const issuer of issuers) for (const ca of issuer.cas) if (!owners.has(ca.fingerprint256)) owners.set(ca.fingerprint256, { issuer, ca })
  return owners
}

export function readKey(path: string): { ok: true; pem: Buffer; key: KeyObject } | { ok: false; message: string } {
  const read = readPemFile(path)
  if (!read.ok) return read
  const { pem } = read
  try {
    return { ok: true, pem, key: createPrivateKey(pem) }
  } catch (err) {
    const message = (err as Error).message
    return {
      ok: false,
      message: /passphrase/i.test(message)
        ? `${path} is an encrypted private key: give the gateway an unencrypted one (readable by it alone)`
        : `${path} holds no PEM private key: ${message}`,
    }
  }
}

/**
 * The CAs of client_ca from which no chain of client_ca leads up to a self-signed root. OpenSSL
 * anchors a chain at a root only (Node's TLS server offers no partial chains), so an issuing CA
 * listed without its root had every certificate it signed refused, the detail naming that very CA
 * as "another CA", while check said ok.
 */
function unrooted(cas: readonly X509Certificate[]): X509Certificate[] {
  const signs = (issuer: X509Certificate, subject: X509Certificate) => subject.checkIssued(issuer) && subject.verify(issuer.publicKey)
  // A cross-signed copy of a root listed beside it (same name, same key) is that root to OpenSSL.
  const sameCa = (a: X509Certificate, b: X509Certificate) => a.subject === b.subject && a.publicKey.equals(b.publicKey)
  const rooted = new Set(cas.filter((ca) => signs(ca, ca)))
  for (let grew = true; grew;) {
    grew = false
    for (const ca of cas) {
      if (!rooted.has(ca) && [...rooted].some((other) => signs(other, ca) || sameCa(other, ca))) {
        rooted.add(ca)
        grew = true
      }
    }
  }
  return cas.filter((ca) => !rooted.has(ca))
}

/**
 * What is wrong with a file of CAs client certificates must chain to (server.tls.client_ca, or an x509
 * issuer's ca that forwarded certificates are checked against) that still lets it be used.
 */
export function trustedCaWarnings(cas: readonly X509Certificate[], file: string, nowMs: number): string[] {
  const warnings: string[] = []
  for (const ca of cas) {
    if (!ca.ca) warnings.push(`"${distinguishedName(ca.subject)}" in ${file} is not a CA certificate (basicConstraints CA:TRUE): only a client presenting that very certificate would be accepted`)
    // As the server certificate's: the handshake refuses what an expired CA signed, and nothing else would say why.
    if (Date.parse(ca.validTo) < nowMs) warnings.push(`"${distinguishedName(ca.subject)}" in ${file} expired at ${new Date(ca.validTo).toISOString()}: every client certificate it signed is refused`)
  }
  return warnings
}

/**
 * Reads and checks server.tls: the chain parses, the key is a private key that matches the
 * certificate, OpenSSL accepts the pair, client_ca parses. An expired or not yet valid server
 * certificate is a warning (clients will refuse it, but serving it is the operator's call).
 */
export function readTlsMaterial(tls: TlsConfig, nowMs: number = Date.now()): TlsRead {
  const errors: Finding[] = []
  const warnings: Finding[] = []
  const at = (key: string): ConfigPath => ['server', 'tls', key]
  const error = (key: string, message: string) => errors.push({ severity: 'error', path: at(key), message })
  const warn = (key: string, message: string) => warnings.push({ severity: 'warning', path: at(key), message })

  const chain = readCertificates(tls.cert)
  if (!chain.ok) error('cert', chain.message)
  const key = readKey(tls.key)
  if (!key.ok) error('key', key.message)
  let clientCa: { pem: Buffer; certificates: X509Certificate[] } | null = null
  if (tls.client_ca !== undefined) {
    const read = readCertificates(tls.client_ca)
    if (!read.ok) error('client_ca', read.message)
    else {
      clientCa = read
      for (const message of trustedCaWarnings(read.certificates, tls.client_ca, nowMs)) warn('client_ca', message)
      for (const ca of unrooted(read.certificates.filter((c) => c.ca))) {
        error('client_ca', `"${distinguishedName(ca.subject)}" in ${tls.client_ca} is not a root, and the CA that signed it ("${distinguishedName(ca.issuer)}") is not in client_ca: the TLS handshake checks a client certificate's chain up to a self-signed root of client_ca, so it would refuse every certificate this CA signed. Add that root to client_ca`)
      }
    }
  }
  const crl = tls.client_crl === undefined ? null : readCrls(tls.client_crl)
  if (crl !== null && !crl.ok) error('client_crl', crl.message)
  if (tls.client_auth !== 'none' && tls.client_ca === undefined) {
    error('client_auth', `client_auth: ${tls.client_auth} needs client_ca, the CAs client certificates must chain to`)
  }
  if (tls.client_auth === 'none' && tls.client_ca !== undefined) {
    warn('client_ca', 'client_auth is none: no client certificate is asked for, so client_ca is not used')
  }
  if (!chain.ok || !key.ok) return { ok: false, errors, warnings }

  const leaf = chain.certificates[0] as X509Certificate
  const subject = distinguishedName(leaf.subject)
  if (!leaf.checkPrivateKey(key.key)) {
    error('key', `the key in ${tls.key} does not match the certificate "${subject}" in ${tls.cert}`)
    return { ok: false, errors, warnings }
  }
  try {
    createSecureContext({ cert: chain.pem, key: key.pem, ca: clientCa?.pem, crl: crl?.ok ? crl.pems : undefined, minVersion: tls.min_version })
  } catch (err) {
    error('cert', `OpenSSL refuses the certificate and key: ${(err as Error).message}`)
    return { ok: false, errors, warnings }
  }
  if (Date.parse(leaf.validTo) < nowMs) warn('cert', `the certificate "${subject}" expired at ${new Date(leaf.validTo).toISOString()}: clients will refuse it`)
  else if (Date.parse(leaf.validFrom) > nowMs) warn('cert', `the certificate "${subject}" is not valid before ${new Date(leaf.validFrom).toISOString()}: clients will refuse it until then`)
  if (errors.length > 0) return { ok: false, errors, warnings }
  return {
    ok: true,
    material: {
      cert: chain.pem,
      key: key.pem,
      leaf,
      clientCa: tls.client_auth === 'none' ? null : clientCa?.pem ?? null,
      clientCas: clientCa?.certificates ?? [],
      clientCrl: tls.client_auth === 'none' || !crl?.ok ? null : crl.pems,
      clientCrls: crl?.ok ? crl.crls : [],
    },
    warnings,
  }
}

/**
 * What is wrong with client_crl's CRLs for the CAs client certificates chain to (client_ca's, and
 * the x509 issuers' ca that forwarded certificates are checked against): tls-checks.ts, so that
 * check, a start and a reload all refuse what the handshake would make of them. OpenSSL, once given CRLs
 * (Node sets X509_V_FLAG_CRL_CHECK_ALL), checks every certificate of a chain below its root against
 * its CA's CRL and refuses one whose CA has none, or has one that is out of date: a CA of `cas`
 * without a CRL is an error, as every certificate it signed would be refused; a CRL past its
 * nextUpdate a warning (it was good when written, and a fresh one is the fix), unless that CA has a
 * current CRL beside it, which OpenSSL takes (a rotation that keeps the last one). A CRL that no CA of
 * `cas` names revokes nothing here.
 */
export function crlFindings(crls: readonly RevocationList[], cas: readonly X509Certificate[], file: string, nowMs: number): Finding[] {
  const findings: Finding[] = []
  const path = ['server', 'tls', 'client_crl']
  const error = (message: string) => findings.push({ severity: 'error', path, message })
  const warn = (message: string) => findings.push({ severity: 'warning', path, message })
  const covered = new Set<string>()
  /** CAs with a CRL current now: OpenSSL takes that one, so a stale CRL of theirs beside it refuses nothing. */
  const current = new Set<string>()
  /** CRLs out of their dates, and where their warning goes (in the file's order) once `current` is known. */
  const dated: Array<{ crl: RevocationList; issuer: string; cas: X509Certificate[]; at: number }> = []
  for (const [i, crl] of crls.entries()) {
    const issuer = issuerText(crl)
    const named = cas.filter((ca) => subjectKeyOf(ca) === crl.issuerKey)
    const verdicts = named.map((ca) => ({ ca, signed: crlSignedBy(crl, ca) })).filter(({ signed }) => signed !== false)
    if (verdicts.length === 0) {
      // Its name is a CA's of `cas` and that CA's key did not sign it: a forgery, or a CRL of a CA's earlier key.
      if (named.length > 0) error(`CRL ${i + 1} of ${file} names "${issuer}" as its issuer, and that CA's key did not sign it: OpenSSL refuses it (CRL_SIGNATURE_FAILURE), and with it every certificate that CA signed`)
      else warn(`CRL ${i + 1} of ${file} is issued by "${issuer}", which is not a CA client certificates chain to here: it revokes nothing`)
      continue
    }
    if (verdicts.some(({ signed }) => signed === 'unsupported')) {
      error(`CRL ${i + 1} of ${file} ("${issuer}") is signed by an algorithm the gateway does not verify: sign it with ECDSA, EdDSA or RSA PKCS #1 v1.5 with SHA-2`)
      continue
    }
    for (const { ca } of verdicts) covered.add(ca.fingerprint256)
    const stale = crl.nextUpdateMs !== null && crl.nextUpdateMs < nowMs
    if (!stale && crl.thisUpdateMs <= nowMs) for (const { ca } of verdicts) current.add(ca.fingerprint256)
    else dated.push({ crl, issuer, cas: verdicts.map(({ ca }) => ca), at: findings.length })
  }
  for (const { crl, issuer, cas: itsCas, at } of dated.reverse()) {
    if (itsCas.some((ca) => current.has(ca.fingerprint256))) continue
    const message = crl.nextUpdateMs !== null && crl.nextUpdateMs < nowMs
      ? `the CRL of "${issuer}" in ${file} is out of date: its nextUpdate was ${new Date(crl.nextUpdateMs).toISOString()}, and until a newer one replaces it the TLS handshake refuses every certificate that CA signed (CRL_HAS_EXPIRED)`
      : `the CRL of "${issuer}" in ${file} is not valid before ${new Date(crl.thisUpdateMs).toISOString()} (its thisUpdate): until then the TLS handshake refuses every certificate that CA signed (CRL_NOT_YET_VALID)`
    findings.splice(at, 0, { severity: 'warning', path, message })
  }
  for (const ca of cas) {
    if (!covered.has(ca.fingerprint256)) {
      error(`"${distinguishedName(ca.subject)}" has no CRL in ${file}: given CRLs, the TLS handshake checks every certificate of a chain below its root against its CA's CRL, and refuses one whose CA has none (UNABLE_TO_GET_CRL), so every certificate this CA signed would be refused. Add its CRL (one that revokes nothing will do)`)
    }
  }
  return findings
}
