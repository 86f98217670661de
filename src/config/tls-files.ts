// The files of an upstream's `tls` (CA, client certificate and key), read and checked once: by
// `bouncer check` (a problem is a diagnostic at the key), and when the upstream's pools are made.
// A CA that does not parse, or a key that is not the certificate's, is refused here rather than
// found at the first handshake, where it would only show as 502s.
import { createPrivateKey, X509Certificate, type KeyObject } from 'node:crypto'
import { readFileSync } from 'node:fs'
import type { UpstreamConfig } from './schema.ts'

export type UpstreamTlsConfig = NonNullable<UpstreamConfig['tls']>

/** What node:tls is given: PEM text, and the name to send (SNI) and verify. */
export interface TlsMaterial {
  ca: string | undefined
  cert: string | undefined
  key: string | undefined
  servername: string | undefined
}

export interface TlsProblem {
  key: 'ca' | 'cert' | 'key'
  message: string
}

export function loadTlsMaterial(tls: UpstreamTlsConfig): { material: TlsMaterial; problems: TlsProblem[] } {
  const problems: TlsProblem[] = []
  const read = (key: TlsProblem['key'], path: string | undefined): string | undefined => {
    if (path === undefined) return undefined
    try {
      return readFileSync(path, 'utf8')
    } catch (err) {
      problems.push({ key, message: `cannot read ${path} (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})` })
      return undefined
    }
  }
  const ca = read('ca', tls.ca)
  const cert = read('cert', tls.cert)
  const key = read('key', tls.key)
  if (ca !== undefined) certificateOf('ca', tls.ca as string, ca, problems)
  const certificate = cert === undefined ? undefined : certificateOf('cert', tls.cert as string, cert, problems)
  const privateKey = key === undefined ? undefined : privateKeyOf(tls.key as string, key, problems)
  if (certificate && privateKey && !certificate.checkPrivateKey(privateKey)) {
    problems.push({ key: 'key', message: `${tls.key} is not the key of the certificate in ${tls.cert}` })
  }
  return { material: { ca, cert, key, servername: tls.server_name }, problems }
}

function certificateOf(key: TlsProblem['key'], path: string, pem: string, problems: TlsProblem[]): X509Certificate | undefined {
  try {
    if (!pem.includes('-----BEGIN CERTIFICATE-----')) throw new Error('no PEM certificate')
    return new X509Certificate(pem)
  } catch {
    problems.push({ key, message: `${path} holds no PEM certificate (-----BEGIN CERTIFICATE-----)` })
    return undefined
  }
}

function privateKeyOf(path: string, pem: string, problems: TlsProblem[]): KeyObject | undefined {
  try {
    return createPrivateKey(pem)
  } catch (err) {
    const encrypted = pem.includes('ENCRYPTED') || /passphrase/i.test((err as Error).message)
    problems.push({
      key: 'key',
      message: encrypted
        ? `${path} is encrypted: give the key unencrypted, readable only by the gateway (openssl pkey -in it -out key.pem)`
        : `${path} holds no PEM private key`,
    })
    return undefined
  }
}
