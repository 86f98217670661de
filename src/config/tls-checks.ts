// Checks of the front door: server.tls's files (read here, so `bouncer check` finds a broken or
// mismatched certificate and key before `serve` does), HTTP/2 only on TLS, client certificates
// only where the listener asks for them, and each client CA vouched for by one x509 issuer.
import type { X509Certificate } from 'node:crypto'
import type { Finding } from './diagnostics.ts'
import type { Config } from './schema.ts'
import { distinguishedName, readCertificates, readTlsMaterial } from './server-tls.ts'

export function tlsFindings(config: Config): Finding[] {
  const findings: Finding[] = []
  const { tls, http2 } = config.server
  let clientCas: readonly X509Certificate[] | null = null
  if (tls) {
    const read = readTlsMaterial(tls)
    findings.push(...read.warnings)
    if (!read.ok) findings.push(...read.errors)
    else if (read.material.clientCa !== null) clientCas = read.material.clientCas
  } else if (http2) {
    findings.push({ severity: 'error', path: ['server', 'http2'], message: 'HTTP/2 is offered by ALPN on a TLS listener: set server.tls (cleartext h2c is not supported)' })
  }
  /** Each CA's x509 issuer, by fingerprint: the first to name it. */
  const owners = new Map<string, string>()
  config.issuers.forEach((issuer, i) => {
    if (issuer.type !== 'x509') return
    if (!tls || tls.client_ca === undefined || tls.client_auth === 'none') {
      findings.push({ severity: 'error', path: ['issuers', i, 'type'], message: `x509 issuer "${issuer.name}" needs a listener that asks for client certificates: server.tls with client_ca (and client_auth optional or require)` })
      return
    }
    if (clientCas === null) return
    let cas = clientCas
    if (issuer.ca !== undefined) {
      const read = readCertificates(issuer.ca)
      if (!read.ok) {
        findings.push({ severity: 'error', path: ['issuers', i, 'ca'], message: read.message })
        return
      }
      cas = read.certificates
      const inClientCa = new Set(clientCas.map((ca) => ca.fingerprint256))
      for (const ca of cas) {
        if (!inClientCa.has(ca.fingerprint256)) {
          findings.push({ severity: 'error', path: ['issuers', i, 'ca'], message: `"${distinguishedName(ca.subject)}" is not in server.tls.client_ca: the TLS handshake would refuse every certificate it signed` })
        }
      }
    }
    // A certificate is one issuer's: the first whose ca holds the CA its chain ends at (identity/x509.ts).
    // A CA named by two made the later one's trust rules dead, with no word from check.
    // An issuer without ca takes what the issuers before it left of client_ca: dead only when they left nothing (found by review).
    const shared = cas.filter((ca) => owners.has(ca.fingerprint256))
    if (shared.length > 0 && (issuer.ca !== undefined || shared.length === cas.length)) {
      const first = owners.get((shared[0] as X509Certificate).fingerprint256) as string
      findings.push({
        severity: 'error',
        path: ['issuers', i, issuer.ca === undefined ? 'type' : 'ca'],
        message: `${shared.map((ca) => `"${distinguishedName(ca.subject)}"`).join(', ')} ${shared.length === 1 ? 'is' : 'are'} already x509 issuer "${first}"'s${issuer.ca === undefined ? ' (without ca, this issuer takes all of server.tls.client_ca)' : ''}: a certificate is its first issuer's, so trust rules naming "${issuer.name}" would never match it. Give each issuer its own CAs`,
      })
    }
    for (const ca of cas) if (!owners.has(ca.fingerprint256)) owners.set(ca.fingerprint256, issuer.name)
  })
  return findings
}
