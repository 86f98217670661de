// TLS termination on the gateway listener (server.tls). The certificate, key, client CAs and CRLs
// (and the x509 issuers' ca files) are read again at every reload: on SIGHUP, and when one of their files
// changes (polled: a renamed-over file, a certbot renewal, a Kubernetes secret's symlink swap all show as a new mtime or inode),
// which starts the same reload, so the files and the x509 issuers that name client_ca's CAs never
// disagree. A new pair is installed with setSecureContext: connections already open keep the
// context they were made with, new handshakes get the new one (and new session ticket keys, so no
// session made under the old CAs resumes). Files that do not load (unreadable, not PEM, a key that
// does not match) fail the reload's check: the running certificate stays, and the reload says why.
import type { X509Certificate } from 'node:crypto'
import { unwatchFile, watchFile, type Stats } from 'node:fs'
import type { Server as TlsServer, SecureContextOptions } from 'node:tls'
import { distinguishedName, type TlsConfig, type TlsMaterial } from '../config/index.ts'
import type { Logger } from '../telemetry/index.ts'
import { watchCrlExpiry, type CrlExpiry } from './crl-expiry.ts'

/**
 * TLS 1.2 suites: forward secrecy and AEAD only (Mozilla's "intermediate" list without DHE, which
 * needs parameters of its own); the CBC suites Node also allows are left out, as HTTP/2 forbids
 * them (RFC 9113 §9.2.2). TLS 1.3's suites are OpenSSL's defaults, all AEAD.
 */
const TLS12_CIPHERS = [
  'ECDHE-ECDSA-AES128-GCM-SHA256', 'ECDHE-RSA-AES128-GCM-SHA256',
  'ECDHE-ECDSA-AES256-GCM-SHA384', 'ECDHE-RSA-AES256-GCM-SHA384',
  'ECDHE-ECDSA-CHACHA20-POLY1305', 'ECDHE-RSA-CHACHA20-POLY1305',
].join(':')

/** How often the certificate files are looked at (a stat each). */
const TLS_FILE_POLL_MS = 1_000
/** A certificate and its key are rarely replaced in the same instant: read them once both have settled. */
const TLS_FILE_SETTLE_MS = 200

/**
 * The context a TLS listener is made with, and replaced by on a reload. `ticketKeys`: the session
 * ticket keys every worker of server.workers shares (48 bytes, new at each reload), so a ticket one
 * worker issued resumes on another; without them (one process) each context makes its own.
 */
export function secureContextOptions(tls: TlsConfig, material: TlsMaterial, ticketKeys?: Buffer): SecureContextOptions {
  return {
    ...(ticketKeys ? { ticketKeys } : {}),
    cert: material.cert,
    key: material.key,
    ca: material.clientCa ?? undefined,
    // Node sets OpenSSL's CRL_CHECK_ALL with it: every certificate below the root needs its CA's CRL (README, client certificates).
    crl: material.clientCrl === null ? undefined : [...material.clientCrl],
    minVersion: tls.min_version,
    ciphers: TLS12_CIPHERS,
    // The server's order, so a client offering CBC or RSA key exchange first still gets ECDHE+AEAD.
    honorCipherOrder: true,
  }
}

/**
 * Whether a client certificate is asked for, and whether a connection without a valid one is
 * refused in the handshake (require) or let through for the routes to answer 401 (optional).
 */
export function clientAuthOptions(tls: TlsConfig): { requestCert: boolean; rejectUnauthorized: boolean } {
  return { requestCert: tls.client_auth !== 'none', rejectUnauthorized: tls.client_auth === 'require' }
}

export interface TlsReloader {
  /** Installs server.tls's files as a reload read them while it was prepared, and watches them. */
  apply(tls: TlsConfig, material: TlsMaterial, ticketKeys?: Buffer): void
  /** The certificate served now. */
  certificate(): X509Certificate
  /** When each CA's CRL of client_crl goes out of date (none without client_crl). */
  crlExpiries(): readonly CrlExpiry[]
  stop(): void
}

/**
 * `onFilesChanged`: called once the files have settled after a change; without it the files are not
 * watched. `alsoWatched`: the x509 issuers' `ca` files of the config in force, read by the same reload.
 * `warnsOfCrls`: whether this listener logs client_crl's CRLs going out of date (crl-expiry.ts; with
 * server.workers, the first worker's alone). `issuerCas`: the x509 issuers' CAs of the config in
 * force, whose CRLs count besides client_ca's.
 */
export function createTlsReloader(
  server: TlsServer, initial: TlsConfig, initialMaterial: TlsMaterial,
  deps: { logger: Logger; onFilesChanged?: () => void; alsoWatched?: () => readonly string[]; warnsOfCrls?: boolean; issuerCas?: () => readonly X509Certificate[] },
): TlsReloader {
  let leaf = initialMaterial.leaf
  const crls = watchCrlExpiry(deps.logger, deps.warnsOfCrls ?? true)
  let watched: string[] = []
  let settle: NodeJS.Timeout | null = null

  // Each pair served, the first included: an operator checks a restart's certificate as a renewal's.
  const logLoaded = () =>
    deps.logger.info({ subject: distinguishedName(leaf.subject), not_after: new Date(leaf.validTo).toISOString(), fingerprint_sha256: leaf.fingerprint256 }, 'TLS certificate loaded')

  function apply(tls: TlsConfig, material: TlsMaterial, ticketKeys?: Buffer): void {
    watch(tls)
    server.setSecureContext(secureContextOptions(tls, material, ticketKeys))
    Object.assign(server, clientAuthOptions(tls))
    leaf = material.leaf
    logLoaded()
    followCrls(material)
  }

  /** The CRLs of the CAs client certificates chain to: client_ca's when the handshake asks for one, and the x509 issuers' (forwarded certificates). */
  function followCrls(material: TlsMaterial): void {
    crls.follow(material.clientCrls, [...(material.clientCa === null ? [] : material.clientCas), ...(deps.issuerCas?.() ?? [])])
  }

  const changed = (now: Stats, before: Stats) => {
    if (now.mtimeMs === before.mtimeMs && now.ino === before.ino && now.size === before.size) return
    if (settle !== null) clearTimeout(settle)
    settle = setTimeout(() => {
      settle = null
      deps.onFilesChanged?.()
    }, TLS_FILE_SETTLE_MS).unref()
  }

  function watch(tls: TlsConfig): void {
    if (!deps.onFilesChanged) return
    // An issuer's ca, changed alone, went unread until SIGHUP: a CA taken out of it kept vouching.
    // A CRL is replaced every few hours or days (a cron job, a CA's publication): read as it lands, no SIGHUP needed.
    const paths = [...new Set([tls.cert, tls.key, ...[tls.client_ca, tls.client_crl].filter((path) => path !== undefined), ...(deps.alsoWatched?.() ?? [])])]
    if (paths.join('\0') === watched.join('\0')) return
    for (const path of watched) unwatchFile(path, changed)
    watched = paths
    for (const path of paths) watchFile(path, { interval: TLS_FILE_POLL_MS, persistent: false }, changed)
  }

  watch(initial)
  logLoaded()
  followCrls(initialMaterial)
  return {
    apply,
    certificate: () => leaf,
    crlExpiries: () => crls.expiries(),
    stop() {
      crls.stop()
      if (settle !== null) clearTimeout(settle)
      for (const path of watched) unwatchFile(path, changed)
      watched = []
    },
  }
}
