// The files of an upstream's `tls` (CA, client certificate and key), read and checked once: by
// `bouncer check` (a problem is a diagnostic at the key), and when the upstream's pools are made.
// A CA that does not parse, or a key that is not the certificate's, is refused here rather than
// found at the first handshake, where it would only show as 502s. The files are read by the same
// readers as server.tls's (server-tls.ts).
import type { UpstreamConfig } from './schema.ts'
import { readCertificates, readKey } from './server-tls.ts'

export type UpstreamTlsConfig = NonNullable<UpstreamConfig['tls']>

/** What node:tls is given: PEM text, and the name to send (SNI) and verify. */
export interface UpstreamTlsMaterial {
  ca: string | undefined
  cert: string | undefined
  key: string | undefined
  servername: string | undefined
}

export interface TlsProblem {
  key: 'ca' | 'cert' | 'key'
  message: string
}

export function loadTlsMaterial(tls: UpstreamTlsConfig): { material: UpstreamTlsMaterial; problems: TlsProblem[] } {
  const problems: TlsProblem[] = []
  const ca = tls.ca === undefined ? undefined : readCertificates(tls.ca)
  if (ca && !ca.ok) problems.push({ key: 'ca', message: ca.message })
  const cert = tls.cert === undefined ? undefined : readCertificates(tls.cert)
  if (cert && !cert.ok) problems.push({ key: 'cert', message: cert.message })
  const key = tls.key === undefined ? undefined : readKey(tls.key)
  if (key && !key.ok) problems.push({ key: 'key', message: key.message })
  if (cert?.ok && key?.ok && !cert.certificates[0]?.checkPrivateKey(key.key)) {
    problems.push({ key: 'key', message: `${tls.key} is not the key of the certificate in ${tls.cert}` })
  }
  const text = (read: { ok: true; pem: Buffer } | { ok: false } | undefined) => (read?.ok ? read.pem.toString('utf8') : undefined)
  return { material: { ca: text(ca), cert: text(cert), key: text(key), servername: tls.server_name }, problems }
}
