// Checks of the front door: server.tls's files (read here, so `bouncer check` finds a broken or
// mismatched certificate and key before `serve` does), HTTP/2 only on TLS, client certificates
// only where the listener asks for them or a trusted proxy forwards them, and each client CA
// vouched for by one x509 issuer.
import type { X509Certificate } from 'node:crypto'
import { isReservedForConfig } from '../http/index.ts'
import type { Finding } from './diagnostics.ts'
import type { Config } from './schema.ts'
import type { RevocationList } from './crl.ts'
import { caOwners, crlFindings, distinguishedName, readCertificates, readTlsMaterial, trustedCaWarnings } from './server-tls.ts'

export function tlsFindings(config: Config): Finding[] {
  const findings: Finding[] = []
  const { tls, http2 } = config.server
  let clientCas: readonly X509Certificate[] | null = null
  let crls: readonly RevocationList[] | null = null
  if (tls) {
    const read = readTlsMaterial(tls)
    findings.push(...read.warnings)
    if (!read.ok) findings.push(...read.errors)
    else {
      if (read.material.clientCa !== null) clientCas = read.material.clientCas
      if (tls.client_crl !== undefined) crls = read.material.clientCrls
    }
  } else if (http2) {
    findings.push({ severity: 'error', path: ['server', 'http2'], message: 'HTTP/2 is offered by ALPN on a TLS listener: set server.tls (cleartext h2c is not supported)' })
  }
  /** The x509 issuers checked so far, with their CAs: a CA is the first's to name it (caOwners). */
  const earlier: Array<{ name: string; cas: readonly X509Certificate[] }> = []
  const forwarded = config.server.forwarded_client_cert !== undefined
  /** The CAs that client certificates' chains pass through, whose CRLs client_crl must hold. */
  const revocable = new Map<string, X509Certificate>()
  if (clientCas !== null) for (const ca of clientCas) if (ca.ca) revocable.set(ca.fingerprint256, ca)
  config.issuers.forEach((issuer, i) => {
    if (issuer.type !== 'x509') return
    const listenerAsks = tls !== undefined && tls.client_ca !== undefined && tls.client_auth !== 'none'
    if (!listenerAsks) {
      if (!forwarded) {
        findings.push({ severity: 'error', path: ['issuers', i, 'type'], message: `x509 issuer "${issuer.name}" needs a listener that asks for client certificates (server.tls with client_ca, and client_auth optional or require), or certificates forwarded by a trusted proxy (server.forwarded_client_cert)` })
        return
      }
      if (issuer.ca === undefined) {
        findings.push({ severity: 'error', path: ['issuers', i, 'type'], message: `x509 issuer "${issuer.name}" has no ca, and the listener asks for no client certificates (server.tls.client_ca): name the CAs forwarded certificates must chain to` })
        return
      }
    } else if (clientCas === null) return
    const listenerCas = listenerAsks ? clientCas : null
    let cas = listenerCas ?? []
    if (issuer.ca !== undefined) {
      const read = readCertificates(issuer.ca)
      if (!read.ok) {
        findings.push({ severity: 'error', path: ['issuers', i, 'ca'], message: read.message })
        return
      }
      cas = read.certificates
      // Forwarded certificates are checked against these CAs alone; those also in client_ca were checked as such above.
      if (forwarded) {
        for (const ca of cas) if (ca.ca) revocable.set(ca.fingerprint256, ca)
        const checked = new Set((listenerCas ?? []).map((ca) => ca.fingerprint256))
        const unchecked = cas.filter((ca) => !checked.has(ca.fingerprint256))
        for (const message of trustedCaWarnings(unchecked, issuer.ca, Date.now())) findings.push({ severity: 'warning', path: ['issuers', i, 'ca'], message })
      }
      const inClientCa = new Set((listenerCas ?? []).map((ca) => ca.fingerprint256))
      for (const ca of listenerCas === null ? [] : cas) {
        if (!inClientCa.has(ca.fingerprint256)) {
          // Forwarded certificates are checked against the issuers' CAs alone: such a CA serves them only.
          findings.push(forwarded
            ? { severity: 'warning', path: ['issuers', i, 'ca'], message: `"${distinguishedName(ca.subject)}" is not in server.tls.client_ca: the TLS handshake refuses every certificate it signed, which only forwarded ones (server.forwarded_client_cert) can chain to` }
            : { severity: 'error', path: ['issuers', i, 'ca'], message: `"${distinguishedName(ca.subject)}" is not in server.tls.client_ca: the TLS handshake would refuse every certificate it signed` })
        }
      }
    }
    // A certificate is one issuer's: the first whose ca holds the CA its chain ends at (caOwners, as identity/x509.ts reads it).
    // A CA named by two made the later one's trust rules dead, with no word from check.
    // An issuer without ca takes what the issuers before it left of client_ca: dead only when they left nothing (found by review).
    const owners = caOwners(earlier)
    const shared = cas.filter((ca) => owners.has(ca.fingerprint256))
    if (shared.length > 0 && (issuer.ca !== undefined || shared.length === cas.length)) {
      const first = owners.get((shared[0] as X509Certificate).fingerprint256)?.issuer.name as string
      findings.push({
        severity: 'error',
        path: ['issuers', i, issuer.ca === undefined ? 'type' : 'ca'],
        message: `${shared.map((ca) => `"${distinguishedName(ca.subject)}"`).join(', ')} ${shared.length === 1 ? 'is' : 'are'} already x509 issuer "${first}"'s${issuer.ca === undefined ? ' (without ca, this issuer takes all of server.tls.client_ca)' : ''}: a certificate is its first issuer's, so trust rules naming "${issuer.name}" would never match it. Give each issuer its own CAs`,
      })
    }
    earlier.push({ name: issuer.name, cas })
  })
  if (tls?.client_crl !== undefined && crls !== null) {
    if (revocable.size === 0 && clientCas === null && !forwarded) {
      findings.push({ severity: 'warning', path: ['server', 'tls', 'client_crl'], message: 'no client certificate is asked for (client_ca with client_auth optional or require) nor forwarded (server.forwarded_client_cert), so client_crl is not used' })
    } else {
      for (const finding of crlFindings(crls, [...revocable.values()], tls.client_crl, Date.now())) findings.push(finding)
    }
  }
  findings.push(...forwardedCertFindings(config))
  return findings
}

/** Header names a proxy's certificate field cannot take: ones the gateway reads or writes for something else. */
const NOT_A_CERTIFICATE_FIELD: ReadonlySet<string> = new Set(['authorization', 'cookie', 'content-type', 'x-request-id'])

/**
 * server.forwarded_client_cert: believed from trusted_proxies alone (RFC 9440 §3), so it needs some,
 * and none that is every address (a client could send any certificate, and certificates are public);
 * an x509 issuer whose CAs the certificates chain to; two distinct fields of their own.
 */
function forwardedCertFindings(config: Config): Finding[] {
  const forwarded = config.server.forwarded_client_cert
  if (forwarded === undefined) return []
  const findings: Finding[] = []
  const at = ['server', 'forwarded_client_cert']
  if (config.server.trusted_proxies.length === 0) {
    findings.push({ severity: 'error', path: at, message: 'forwarded client certificates are believed only from server.trusted_proxies, and it lists none: name the load balancers that terminate TLS' })
  }
  config.server.trusted_proxies.forEach((proxy, i) => {
    if (proxy.prefix === 0) {
      findings.push({ severity: 'error', path: ['server', 'trusted_proxies', i], message: 'with forwarded_client_cert, a trusted proxy of every address lets any client send a certificate it does not hold (certificates are public): list the load balancers alone' })
    }
  })
  if (!config.issuers.some((issuer) => issuer.type === 'x509')) {
    findings.push({ severity: 'error', path: at, message: 'forwarded client certificates need an issuer of type x509, whose ca they must chain to' })
  }
  for (const key of ['header', 'chain_header'] as const) {
    const name = forwarded[key].toLowerCase()
    if (isReservedForConfig(name) || NOT_A_CERTIFICATE_FIELD.has(name)) {
      findings.push({ severity: 'error', path: [...at, key], message: `${forwarded[key]} is a header the gateway reads or writes for another purpose: name the field your proxy writes the certificate in (RFC 9440: Client-Cert, Client-Cert-Chain)` })
    }
  }
  if (forwarded.header.toLowerCase() === forwarded.chain_header.toLowerCase()) {
    findings.push({ severity: 'error', path: [...at, 'chain_header'], message: 'chain_header must be another field than header: the certificate and its chain are two fields' })
  }
  return findings
}
