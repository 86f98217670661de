// Checks of the front door: server.tls's files (read here, so `bouncer check` finds a broken or
// mismatched certificate and key before `serve` does), HTTP/2 only on TLS, and client certificates
// only where the listener asks for them.
import type { Finding } from './diagnostics.ts'
import type { Config } from './schema.ts'
import { distinguishedName, readCertificates, readTlsMaterial } from './server-tls.ts'

export function tlsFindings(config: Config): Finding[] {
  const findings: Finding[] = []
  const { tls, http2 } = config.server
  let clientCaFingerprints: Set<string> | null = null
  if (tls) {
    const read = readTlsMaterial(tls)
    findings.push(...read.warnings)
    if (!read.ok) findings.push(...read.errors)
    else if (read.material.clientCa !== null) clientCaFingerprints = new Set(read.material.clientCas.map((ca) => ca.fingerprint256))
  } else if (http2) {
    findings.push({ severity: 'error', path: ['server', 'http2'], message: 'HTTP/2 is offered by ALPN on a TLS listener: set server.tls (cleartext h2c is not supported)' })
  }
  config.issuers.forEach((issuer, i) => {
    if (issuer.type !== 'x509') return
    if (!tls || tls.client_ca === undefined || tls.client_auth === 'none') {
      findings.push({ severity: 'error', path: ['issuers', i, 'type'], message: `x509 issuer "${issuer.name}" needs a listener that asks for client certificates: server.tls with client_ca (and client_auth optional or require)` })
      return
    }
    if (issuer.ca === undefined || clientCaFingerprints === null) return
    const read = readCertificates(issuer.ca)
    if (!read.ok) {
      findings.push({ severity: 'error', path: ['issuers', i, 'ca'], message: read.message })
      return
    }
    for (const ca of read.certificates) {
      if (!clientCaFingerprints.has(ca.fingerprint256)) {
        findings.push({ severity: 'error', path: ['issuers', i, 'ca'], message: `"${distinguishedName(ca.subject)}" is not in server.tls.client_ca: the TLS handshake would refuse every certificate it signed` })
      }
    }
  })
  return findings
}
