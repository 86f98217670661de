// When server.tls.client_crl's CRLs go out of date. A CRL past its nextUpdate is refused by OpenSSL
// (CRL_HAS_EXPIRED), and with it every certificate its CA signed, until a newer one is installed;
// the handshakes it fails were logged at debug level only, so a CRL that passed while the gateway
// ran (a cron job that stopped fetching it) went unseen. `bouncer check`, a start and a reload warn
// of a CRL already stale when read (crlFindings); this watches the loaded ones on a timer of its own:
// one warning a day before, one when it passes, each once per CRL until a reload loads them again.
// /metrics publishes the same dates (bouncer_tls_client_crl_expiry_timestamp_seconds). Only the CRLs
// of the CAs client certificates chain to count: one of another issuer is never consulted, and its
// date, paging someone, would refuse nobody (`bouncer check` warns of it instead).
import type { X509Certificate } from 'node:crypto'
import { crlsByCa, distinguishedName, type RevocationList } from '../config/index.ts'
import type { Logger } from '../telemetry/index.ts'

/** One CA's CRL as /metrics and the warnings name it. */
export interface CrlExpiry {
  /** The CA whose CRL it is, as distinguishedName writes its subject. */
  readonly issuer: string
  /** Its nextUpdate, in epoch ms. */
  readonly nextUpdateMs: number
}

/** How long before nextUpdate the first warning comes. */
const WARN_AHEAD_MS = 24 * 3_600_000
/** The longest wait between two looks: setTimeout takes at most 2^31-1 ms, and a wall clock set forward is seen within it. */
const LONGEST_WAIT_MS = 3_600_000

/**
 * Each CA's CRL that counts, for the CAs of `cas` (those client certificates chain to): of several
 * CRLs of one CA, OpenSSL takes a current one, so the latest nextUpdate is when that CA's
 * certificates start being refused. A CRL without nextUpdate never goes out of date (OpenSSL accepts
 * it): its CA has no entry. A CRL no CA of `cas` signed has none either. Named as the CA's subject,
 * whatever form the CRL writes its issuer in; a CA renewed under its name is one entry.
 */
export function crlExpiries(crls: readonly RevocationList[], cas: readonly X509Certificate[]): CrlExpiry[] {
  const latest = new Map<string, number>()
  const byCa = crlsByCa(crls, cas)
  for (const ca of cas) {
    const signed = byCa.get(ca.fingerprint256)
    if (signed === undefined) continue
    const issuer = distinguishedName(ca.subject)
    for (const crl of signed) latest.set(issuer, Math.max(latest.get(issuer) ?? -Infinity, crl.nextUpdateMs ?? Infinity))
  }
  return [...latest].filter(([, ms]) => ms !== Infinity).map(([issuer, nextUpdateMs]) => ({ issuer, nextUpdateMs }))
}

export interface CrlExpiryWatch {
  /** The CRLs a start or a reload loaded, and the CAs client certificates chain to: what is warned of starts again from them. */
  follow(crls: readonly RevocationList[], cas: readonly X509Certificate[]): void
  /** The loaded CRLs' expiries, for /metrics. */
  expiries(): readonly CrlExpiry[]
  stop(): void
}

/** `warns`: false in the workers that do not lead (server.workers), whose lines would repeat the first's. */
export function watchCrlExpiry(logger: Logger, warns: boolean, now: () => number = Date.now): CrlExpiryWatch {
  let expiries: CrlExpiry[] = []
  /** Per issuer, what was warned of since the load: 'soon' (a day ahead) or 'passed'. */
  const warned = new Map<string, 'soon' | 'passed'>()
  let timer: NodeJS.Timeout | null = null

  function look(): void {
    timer = null
    const at = now()
    let nextLook = Infinity
    for (const { issuer, nextUpdateMs } of expiries) {
      const fields = { issuer, next_update: new Date(nextUpdateMs).toISOString() }
      if (at > nextUpdateMs) {
        if (warned.get(issuer) !== 'passed') logger.warn(fields, 'client CRL is out of date: the TLS handshake refuses every certificate its CA signed (CRL_HAS_EXPIRED) until a newer CRL is installed in server.tls.client_crl')
        warned.set(issuer, 'passed')
        continue
      }
      if (at >= nextUpdateMs - WARN_AHEAD_MS && !warned.has(issuer)) {
        logger.warn(fields, 'client CRL goes out of date within a day: install a newer one in server.tls.client_crl before its nextUpdate, or every certificate its CA signed will be refused')
        warned.set(issuer, 'soon')
      }
      nextLook = Math.min(nextLook, warned.has(issuer) ? nextUpdateMs + 1 : nextUpdateMs - WARN_AHEAD_MS)
    }
    if (nextLook !== Infinity) timer = setTimeout(look, Math.min(Math.max(nextLook - at, 0), LONGEST_WAIT_MS)).unref()
  }

  return {
    follow(crls, cas) {
      if (timer !== null) clearTimeout(timer)
      timer = null
      expiries = crlExpiries(crls, cas)
      warned.clear()
      if (!warns) return
      // Already stale when read: the start's or reload's own warning (crlFindings) said so.
      const at = now()
      for (const { issuer, nextUpdateMs } of expiries) if (at > nextUpdateMs) warned.set(issuer, 'passed')
      look()
    },
    expiries: () => expiries,
    stop() {
      if (timer !== null) clearTimeout(timer)
      timer = null
    },
  }
}
