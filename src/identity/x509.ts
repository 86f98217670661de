// Workload identity from TLS client certificates (routes with `accept: [client_cert]`). The TLS
// handshake has already proved the client holds the certificate's key and checked its chain against
// server.tls.client_ca (with client_auth: optional the handshake lets a bad one through, so that the
// answer here can say what is wrong with it). What is left: which x509 issuer's CA the chain ends
// at, and who the certificate names — its URI SAN (a SPIFFE ID), else its CN.
//
// A connection's certificate never changes (renegotiation is disabled on the listener), so what it
// proves is worked out once per connection and kept in a WeakMap keyed by the connection: a request
// on a kept-alive connection or an HTTP/2 stream costs a map lookup and a clock check (the
// certificate may expire while its connection is open).
//
// Behind a load balancer that terminates TLS (server.forwarded_client_cert), the certificate comes
// in RFC 9440's fields from a peer of server.trusted_proxies, which proved the key; its chain is
// checked here as the handshake would (certificate-path.ts), and the same identity follows.
//
// With server.tls.client_crl the handshake checks its CRLs (OpenSSL, CRL_CHECK_ALL); here they are
// checked again, as OpenSSL does, for what no handshake of theirs checked: forwarded certificates,
// and connections made before a reload read a new CRL (the verifier is the reload's). A certificate
// below its root whose CA has no CRL is refused, as OpenSSL refuses it.
import { createHash, X509Certificate } from 'node:crypto'
import type { DetailedPeerCertificate } from 'node:tls'
import { createLru } from '../collections/index.ts'
import { caOwners, distinguishedName, serialKey, unmapIpv4, type RevocationList } from '../config/index.ts'
import { GatewayError, truncateClientValue } from '../errors/index.ts'
import type { Identity } from '../request/index.ts'
import { CredentialRefused, rawHeader, type Authenticated, type CredentialInput, type CredentialVerifier } from './authenticate.ts'
import { MAX_CHAIN_DEPTH, verifyCertificatePath } from './certificate-path.ts'
import { ClientCertFieldError, parseClientCertChainField, parseClientCertField } from './client-cert-field.ts'
import { checkOrigin, forgeable, publicOrigin, type OriginSettings } from './origin.ts'
import type { PresentedCertificate } from './verify.ts'
import { MAX_PRINCIPAL_NAME_BYTES } from './principal-name.ts'

/** An x509 issuer: its name (trust rules' `issuer`) and the CA certificates it vouches for. */
export interface X509Issuer {
  readonly name: string
  readonly cas: readonly X509Certificate[]
}

/**
 * server.forwarded_client_cert: the fields (names as configured, any case) in which a
 * TLS-terminating proxy among server.trusted_proxies hands on its client's certificate (RFC 9440).
 */
export interface ForwardedClientCert {
  readonly header: string
  readonly chainHeader: string
}

/** What node:tls's TLSSocket offers (an HTTP/2 session's socket forwards the same). */
interface TlsConnection {
  readonly encrypted?: boolean
  readonly authorized?: boolean
  readonly authorizationError?: Error | string | null
  getPeerX509Certificate?(): X509Certificate | undefined
  getPeerCertificate?(detailed: true): DetailedPeerCertificate
}

/**
 * What a certificate proves: an identity, good within its dates and its CAs' (checked on every
 * request), or why not.
 */
type PeerOutcome =
  | {
    readonly identity: Identity
    readonly notBeforeMs: number
    readonly notAfterMs: number
    readonly caNotBeforeMs: number
    readonly caNotAfterMs: number
  }
  /** `identity`: whose certificate it was, for the audit record only (a handshake refused for its dates). */
  | { readonly refusal: string; readonly identity?: Identity }

/** server.forwarded_client_cert as configured, and its field names lower-cased as raw headers are matched. */
interface ProxyFields {
  readonly fields: ForwardedClientCert
  readonly header: string
  readonly chainHeader: string
}

type Anchors = ReadonlyMap<string, { issuer: X509Issuer; ca: X509Certificate }>

/** server.tls.client_crl's CRLs by the SHA-256 fingerprint of the CA that signed each (config crlsByCa); null: no CRLs, nothing is checked. */
export type Revocations = ReadonlyMap<string, readonly RevocationList[]>

/** What examine and examineForwarded check a chain by, beside its anchors. */
interface Trust {
  readonly byFingerprint: Anchors
  readonly trusted: readonly X509Certificate[]
  readonly revocations: Revocations | null
}

/** SPIFFE ID §2.3: implementations support IDs of up to 2048 bytes, and should not make longer ones. */
const MAX_SUBJECT_BYTES = MAX_PRINCIPAL_NAME_BYTES

/** `scheme://…` (RFC 3986 §3): how a SPIFFE ID, or any URI a trust rule's subject could name, begins. */
const URI_WITH_AUTHORITY = /^[a-z][a-z0-9+.-]*:\/\//i

/** What the chain's own check names more exactly than OpenSSL's INVALID_PURPOSE (the leaf's key usage, a CA that is none). */
const USAGE_VERDICTS: ReadonlySet<string> = new Set(['INVALID_PURPOSE', 'KEYUSAGE_NO_DIGITAL_SIGNATURE', 'NS_CERT_TYPE_NO_SSL_CLIENT', 'INVALID_CA'])

/** OpenSSL's verdicts about dates alone: the rest of the chain is checked again to see whose certificate it was. */
const DATE_VERDICTS: ReadonlySet<string> = new Set(['CERT_HAS_EXPIRED', 'CERT_NOT_YET_VALID'])

/** OpenSSL's verdicts about revocation (client_crl): the chain is checked again to say which certificate, and whose it was. */
const REVOCATION_VERDICTS: ReadonlySet<string> = new Set(['CERT_REVOKED', 'UNABLE_TO_GET_CRL', 'CRL_HAS_EXPIRED', 'CRL_NOT_YET_VALID', 'CRL_SIGNATURE_FAILURE'])

/**
 * Forwarded certificates' outcomes, by a digest of the fields: a proxy sends the same certificate
 * with every request of its client, and the chain's signatures cost ≈ 100 µs a link (ECDSA P-256).
 */
const FORWARDED_CACHE_ENTRIES = 1_000
const FORWARDED_CACHE_MS = 5 * 60_000

/**
 * `origin`: what a browser's state-changing request or WebSocket handshake by certificate must name
 * as its Origin (the session cookie's rule: sign_in.base_url, else the request's scheme and Host within server.hosts).
 */
export function clientCertVerifier(issuers: readonly X509Issuer[], now: () => number = Date.now, forwarded: ForwardedClientCert | null = null, origin: OriginSettings = {}, revocations: Revocations | null = null): CredentialVerifier {
  const byFingerprint: Anchors = caOwners(issuers)
  const trust: Trust = { byFingerprint, trusted: [...byFingerprint.values()].map(({ ca }) => ca), revocations }
  // Only connections that presented a certificate get an entry.
  const outcomes = new WeakMap<object, PeerOutcome>()
  const forwardedOutcomes = createLru<PeerOutcome>(FORWARDED_CACHE_ENTRIES)
  const proxyFields: ProxyFields | null = forwarded === null ? null : { fields: forwarded, header: forwarded.header.toLowerCase(), chainHeader: forwarded.chainHeader.toLowerCase() }

  /** What the connection's certificate proves; undefined when it presented none. */
  function outcomeOf(connection: TlsConnection): PeerOutcome | undefined {
    let outcome = outcomes.get(connection)
    if (outcome === undefined && peerCertificate(connection) !== undefined) {
      outcome = examine(connection, trust, now())
      outcomes.set(connection, outcome)
    }
    return outcome
  }

  /**
   * RFC 9440 §3: the fields are believed from a trusted proxy alone; from one, they are the client's
   * certificate, and the connection's own certificate (if any) is the proxy's, never the caller's.
   */
  function fieldsFromProxy(input: CredentialInput): ProxyFields | null {
    return input.viaTrustedProxy === true ? proxyFields : null
  }

  function forwardedOutcome(input: CredentialInput, { fields, header, chainHeader }: ProxyFields, nowMs: number): PeerOutcome | undefined {
    const lines = headerLines(input.rawHeaders, header)
    if (lines.length === 0) return undefined
    const chainLines = headerLines(input.rawHeaders, chainHeader)
    const key = createHash('sha256').update(lines.join('\n')).update('\0').update(chainLines.join('\n')).digest('base64')
    let outcome = forwardedOutcomes.get(key, nowMs)
    if (outcome === undefined) {
      outcome = examineForwarded(lines, chainLines, fields, trust, nowMs)
      forwardedOutcomes.set(key, outcome, nowMs + FORWARDED_CACHE_MS)
    }
    return outcome
  }

  return {
    kind: 'client_cert',
    // A forward-auth check's connection is the proxy's: its certificate is the proxy's own
    // workload identity, not the end user's, so there it is no credential at all.
    presentIn: (input) => {
      const viaProxy = fieldsFromProxy(input)
      return viaProxy !== null
        ? rawHeader(input.rawHeaders, viaProxy.header) !== undefined
        : !input.forwardAuth && outcomeOf(input.socket as TlsConnection) !== undefined
    },
    async authenticate(input: CredentialInput): Promise<Authenticated> {
      const nowMs = now()
      let outcome: PeerOutcome | undefined
      const viaProxy = fieldsFromProxy(input)
      if (viaProxy !== null) {
        outcome = forwardedOutcome(input, viaProxy, nowMs)
        if (outcome === undefined) throw refusal(`This route needs a client certificate; the request came from a trusted proxy (server.trusted_proxies) without ${viaProxy.fields.header}, so its client presented none.`)
      } else {
        if (input.forwardAuth) {
          throw refusal('A forward-auth check describes a request the proxy received: the client certificate on this connection is the proxy\'s own, not the caller\'s, so it proves nothing about the caller.')
        }
        const connection = input.socket as TlsConnection
        outcome = outcomeOf(connection)
        if (outcome === undefined) {
          // The usual slip behind a load balancer: its address left out of trusted_proxies. Said so, not "not TLS".
          if (proxyFields !== null && rawHeader(input.rawHeaders, proxyFields.header) !== undefined) {
            throw refusal(`This route needs a client certificate: ${proxyFields.fields.header} is believed only from server.trusted_proxies, and this peer (${unmapIpv4(input.socket.remoteAddress ?? '') || 'unknown'}) is not one, so the request carries none.`)
          }
          throw refusal(connection.encrypted
            ? 'This route needs a client certificate (TLS client authentication); the connection presented none.'
            : 'This route needs a client certificate, and this connection is not TLS.')
        }
      }
      if ('refusal' in outcome) {
        if (outcome.identity === undefined) throw refusal(outcome.refusal)
        throw new CredentialRefused('client_cert_required', { detail: outcome.refusal }, { identity: outcome.identity, credential: 'client_cert' })
      }
      const caller: Authenticated = { identity: outcome.identity, credential: 'client_cert' }
      const outOfDates = whyOutOfDates(outcome, nowMs)
      // A genuine certificate outside its dates: the record names whose it is (`bouncer audit --principal` finds it).
      if (outOfDates !== null) throw new CredentialRefused('client_cert_required', { detail: outOfDates }, caller)
      // A browser presents its certificate whatever page asks: without this, another origin's page
      // opened a tunnel as the certificate's holder (cross-site WebSocket hijacking), and a form of
      // its own posted as the holder (cross-site request forgery). A request without Origin is no
      // browser's (a service's client), and goes on.
      if (forgeable(input) && rawHeader(input.rawHeaders, 'origin') !== undefined) checkOrigin(input, publicOrigin(input, origin, 'A browser\'s request by client certificate'), 'client certificate', false)
      return caller
    },
  }
}

/**
 * The connection may outlive its certificate, or a CA's, and a forwarded one is checked anew with
 * each request: the dates are checked every time, not only when the chain was.
 */
function whyOutOfDates(outcome: Exclude<PeerOutcome, { refusal: string }>, nowMs: number): string | null {
  const subject = truncateClientValue(String(outcome.identity.claims.subject_dn))
  if (nowMs > outcome.notAfterMs) return `The client certificate "${subject}" expired at ${new Date(outcome.notAfterMs).toISOString()}.`
  if (nowMs < outcome.notBeforeMs) return `The client certificate "${subject}" is not valid before ${new Date(outcome.notBeforeMs).toISOString()}.`
  if (nowMs > outcome.caNotAfterMs) return `The client certificate chains to a CA certificate that expired at ${new Date(outcome.caNotAfterMs).toISOString()}.`
  if (nowMs < outcome.caNotBeforeMs) return `The client certificate chains to a CA certificate that is not valid before ${new Date(outcome.caNotBeforeMs).toISOString()}.`
  return null
}

/**
 * The client certificate a certificate-bound token (cnf.x5t#S256, RFC 8705) must come with, for
 * verify.ts's senderConstraint. From a trusted proxy with server.forwarded_client_cert, its
 * Client-Cert field's DER (RFC 9440 §3: the connection's own certificate is then the proxy's); on a
 * forward-auth check otherwise, none (its connection is the proxy's, as for client_cert above);
 * else the TLS connection's. Its chain is not checked: the binding is to that certificate whatever
 * it chains to (RFC 8705 §2.2 allows self-signed ones), and the proxy, or the handshake, proved its
 * key. Read only when a token is bound: one field's base64, no X.509 parse. Made once per verifier,
 * and given each request's input (verify.ts, TokenVerifier.verify).
 */
export function presentedCertificate(forwarded: ForwardedClientCert | null): PresentedCertificate<CredentialInput> {
  return (input) => {
    if (forwarded !== null && input.viaTrustedProxy === true) {
      const lines = headerLines(input.rawHeaders, forwarded.header.toLowerCase())
      return lines.length === 0 ? undefined : parseClientCertField(lines, forwarded.header)
    }
    if (input.forwardAuth === true) return undefined
    return peerCertificate(input.socket as TlsConnection)?.raw
  }
}

function peerCertificate(connection: TlsConnection): X509Certificate | undefined {
  return typeof connection.getPeerX509Certificate === 'function' ? connection.getPeerX509Certificate() : undefined
}

function refusal(detail: string): GatewayError {
  return new GatewayError('client_cert_required', { detail })
}

function examine(connection: TlsConnection, { byFingerprint, trusted, revocations }: Trust, nowMs: number): PeerOutcome {
  const leaf = peerCertificate(connection) as X509Certificate
  const chain = peerChain(connection)
  if (!connection.authorized) {
    const code = verdictCode(connection.authorizationError)
    // OpenSSL names the last fault it met: a certificate out of its dates is named in the refusal's
    // record only once its chain, checked again without the dates, holds. It stays a refusal for the
    // connection's life: a handshake OpenSSL refused never authenticates, not even once the
    // certificate's notBefore has passed on a kept-alive connection or h2 session.
    if (DATE_VERDICTS.has(code) && (Date.parse(leaf.validTo) < nowMs || Date.parse(leaf.validFrom) > nowMs)) {
      const checked = verifyCertificatePath(leaf, chain.slice(1), trusted, nowMs)
      const proven = checked.ok ? provenOutcome(checked.path, byFingerprint) : undefined
      if (proven !== undefined && !('refusal' in proven)) return { refusal: whyNotAuthorized(code, leaf, nowMs), identity: proven.identity }
    }
    // OpenSSL does not say which certificate its CRLs refused: the chain, checked again, says which,
    // and a revoked certificate's record names whose it was (`bouncer audit --principal`).
    if (REVOCATION_VERDICTS.has(code)) {
      const checked = verifyCertificatePath(leaf, chain.slice(1), trusted, nowMs)
      const revoked = checked.ok && revocations !== null ? revocationVerdict(checked.path, revocations, nowMs) : null
      if (checked.ok && revoked !== null) return revokedOutcome(revoked, checked.path, byFingerprint)
      return { refusal: whyNotAuthorized(code, leaf, nowMs) }
    }
    // OpenSSL says INVALID_PURPOSE for any usage it refuses; the chain's own check says which.
    if (code === 'INVALID_PURPOSE') {
      const checked = verifyCertificatePath(leaf, chain.slice(1), trusted, nowMs)
      if (!checked.ok && USAGE_VERDICTS.has(checked.code)) return { refusal: whyNotAuthorized(checked.code, leaf, nowMs) }
    }
    return { refusal: whyNotAuthorized(code, leaf, nowMs) }
  }
  const path = chain.length > 0 ? chain : [leaf]
  const top = path[path.length - 1] as X509Certificate
  // Node hands the gateway none of the intermediates a client sent (Node 24 never; 22 not once the
  // leaf was read, as here): the chain is the leaf and what client_ca completes it with. OpenSSL
  // checked it through them, but which CA it reached is unseen.
  if (!top.checkIssued(top) && !path.some((certificate) => byFingerprint.has(certificate.fingerprint256))) {
    const missing = truncateClientValue(distinguishedName(top.issuer))
    return { refusal: `The client certificate "${truncateClientValue(distinguishedName(leaf.subject))}" is signed by "${missing}", which is not in server.tls.client_ca: the handshake checked it through the intermediate CA certificates the client sent, but those do not reach the gateway, which cannot tell which CA of client_ca it chains to. Add "${missing}" to server.tls.client_ca (beside its root).` }
  }
  // The handshake checked the CRLs it was given; a connection made before a reload read new ones
  // (a certificate revoked since) is checked against these.
  const revoked = revocations === null ? null : revocationVerdict(path, revocations, nowMs)
  if (revoked !== null) return revokedOutcome(revoked, path, byFingerprint)
  return provenOutcome(path, byFingerprint)
}

/**
 * A forwarded certificate (RFC 9440): the proxy checked it by its own rules, and the gateway checks it
 * again by its own, against the x509 issuers' CAs, as OpenSSL checks a handshake's.
 */
function examineForwarded(lines: readonly string[], chainLines: readonly string[], fields: ForwardedClientCert, { byFingerprint, trusted, revocations }: Trust, nowMs: number): PeerOutcome {
  let leaf: X509Certificate
  let presented: X509Certificate[]
  try {
    const chain = parseClientCertChainField(chainLines, fields.chainHeader)
    if (chain.length >= MAX_CHAIN_DEPTH) return { refusal: `${fields.chainHeader} holds ${chain.length} certificates: a chain is at most ${MAX_CHAIN_DEPTH - 1} above its leaf.` }
    leaf = certificateOf(parseClientCertField(lines, fields.header), fields.header)
    presented = chain.map((der, i) => certificateOf(der, `certificate ${i + 1} of ${fields.chainHeader}`))
  } catch (err) {
    if (err instanceof ClientCertFieldError) return { refusal: `The forwarded client certificate cannot be read: ${err.message}` }
    throw err
  }
  const checked = verifyCertificatePath(leaf, presented, trusted, nowMs)
  if (!checked.ok) return { refusal: whyNotAuthorized(checked.code, leaf, nowMs, "the x509 issuers' ca") }
  // The proxy may check no CRL, or older ones: the gateway's are checked whatever it did.
  const revoked = revocations === null ? null : revocationVerdict(checked.path, revocations, nowMs)
  if (revoked !== null) return revokedOutcome(revoked, checked.path, byFingerprint)
  return provenOutcome(checked.path, byFingerprint)
}

/** Which certificate of a chain client_crl refuses, and OpenSSL's name for why. */
interface RevocationVerdict {
  readonly code: 'CERT_REVOKED' | 'UNABLE_TO_GET_CRL' | 'CRL_HAS_EXPIRED' | 'CRL_NOT_YET_VALID'
  /** Its place in the chain: 0 the leaf, 1 the CA that signed it, … */
  readonly depth: number
}

/**
 * OpenSSL's check with X509_V_FLAG_CRL_CHECK_ALL (what Node's tls `crl` sets), over a chain linked
 * by signatures (the leaf first): every certificate below the top is checked against a CRL its CA
 * signed (the newest within its dates, else the newest), which must exist and be within its dates,
 * and must not list its serial number. The top, a root or an anchor of an issuer's ca, has no CA
 * here to vouch for it. null: nothing refused.
 */
function revocationVerdict(path: readonly X509Certificate[], revocations: Revocations, nowMs: number): RevocationVerdict | null {
  for (let depth = 0; depth < path.length - 1; depth++) {
    const certificate = path[depth] as X509Certificate
    const crls = revocations.get((path[depth + 1] as X509Certificate).fingerprint256)
    if (crls === undefined) return { code: 'UNABLE_TO_GET_CRL', depth }
    const current = (crl: RevocationList) => crl.thisUpdateMs <= nowMs && (crl.nextUpdateMs === null || nowMs <= crl.nextUpdateMs)
    const newest = (candidates: readonly RevocationList[]) => candidates.reduce<RevocationList | undefined>((best, crl) => (best === undefined || crl.thisUpdateMs > best.thisUpdateMs ? crl : best), undefined)
    const crl = (newest(crls.filter(current)) ?? newest(crls)) as RevocationList
    if (crl.thisUpdateMs > nowMs) return { code: 'CRL_NOT_YET_VALID', depth }
    if (crl.nextUpdateMs !== null && nowMs > crl.nextUpdateMs) return { code: 'CRL_HAS_EXPIRED', depth }
    if (crl.revoked.has(serialKey(certificate.serialNumber))) return { code: 'CERT_REVOKED', depth }
  }
  return null
}

/**
 * A refusal by client_crl, in words that name the certificate and the CA whose CRL decided. A
 * revoked certificate (or one below a revoked CA) is genuine, its chain sound: the record names
 * whose it was, as for an expired one.
 */
function revokedOutcome({ code, depth }: RevocationVerdict, path: readonly X509Certificate[], byFingerprint: Anchors): PeerOutcome {
  const leaf = path[0] as X509Certificate
  const certificate = path[depth] as X509Certificate
  const subject = truncateClientValue(distinguishedName(leaf.subject))
  const ca = truncateClientValue(distinguishedName((path[depth + 1] as X509Certificate).subject))
  const which = depth === 0 ? `The client certificate "${subject}"` : `The client certificate "${subject}" chains through the CA certificate "${truncateClientValue(distinguishedName(certificate.subject))}", which`
  const proven = provenOutcome(path, byFingerprint)
  const identity = 'refusal' in proven ? undefined : proven.identity
  switch (code) {
    case 'CERT_REVOKED':
      return { refusal: `${which} is revoked: the CRL of "${ca}" (server.tls.client_crl) lists its serial number ${certificate.serialNumber}.`, identity }
    case 'UNABLE_TO_GET_CRL':
      return { refusal: `${which} is signed by "${ca}", which has no CRL in server.tls.client_crl: with CRLs, a certificate is accepted only where its CA's CRL says it is not revoked.`, identity }
    case 'CRL_HAS_EXPIRED':
      return { refusal: `${which} is signed by "${ca}", whose CRL in server.tls.client_crl is out of date (past its nextUpdate): no certificate it covers is accepted until a current one is installed.`, identity }
    case 'CRL_NOT_YET_VALID':
      return { refusal: `${which} is signed by "${ca}", whose CRL in server.tls.client_crl is not valid yet (its thisUpdate is ahead of the gateway's clock).`, identity }
  }
}

function certificateOf(der: Buffer, what: string): X509Certificate {
  try {
    return new X509Certificate(der)
  } catch {
    throw new ClientCertFieldError(`${what} is not a DER X.509 certificate.`)
  }
}

/**
 * Who a certificate whose chain holds names, under the x509 issuer whose CA the chain reaches first:
 * its URI SAN (a SPIFFE ID), else its CN. `path` is the leaf first, then its CAs.
 */
function provenOutcome(path: readonly X509Certificate[], byFingerprint: Anchors): PeerOutcome {
  const leaf = path[0] as X509Certificate
  const subjectDn = distinguishedName(leaf.subject)
  const anchor = path.map((certificate) => byFingerprint.get(certificate.fingerprint256)).find((found) => found !== undefined)
  if (anchor === undefined) {
    return { refusal: `The client certificate "${truncateClientValue(subjectDn)}" chains to a CA of server.tls.client_ca that no x509 issuer's ca names (its issuer: "${truncateClientValue(distinguishedName(leaf.issuer))}").` }
  }
  const names = subjectAltNames(leaf.subjectAltName)
  const uris = names.filter(([type]) => type === 'URI').map(([, value]) => value)
  const commonNames = commonNamesOf(leaf)
  let sub: string
  if (uris.length > 1) return { refusal: `The client certificate "${truncateClientValue(subjectDn)}" has ${uris.length} URI SANs: a workload identity (SPIFFE ID) is exactly one.` }
  if (uris.length === 1) sub = uris[0] as string
  else if (commonNames.length === 1) {
    sub = commonNames[0] as string
    // A CN is free text a CA copies from the request: written as a URI it would be taken for the
    // SPIFFE ID of another workload, by trust rules, the assertion and the audit record alike.
    if (URI_WITH_AUTHORITY.test(sub)) return { refusal: `The client certificate "${truncateClientValue(subjectDn)}" names its workload as a URI in its CN: a URI (a SPIFFE ID) counts only as a URI SAN.` }
  } else return { refusal: `The client certificate "${truncateClientValue(subjectDn)}" names no workload: it has no URI SAN and ${commonNames.length === 0 ? 'no' : 'more than one'} CN.` }
  // Unbounded, a name went upstream in X-Bouncer-Assertion past what the upstream takes (431 from it).
  const bytes = Buffer.byteLength(sub)
  if (bytes > MAX_SUBJECT_BYTES) return { refusal: `The client certificate "${truncateClientValue(subjectDn)}" names a workload of ${bytes} bytes: a workload identity is at most ${MAX_SUBJECT_BYTES} (the SPIFFE ID's bound).` }

  const notBeforeMs = Date.parse(leaf.validFrom)
  const notAfterMs = Date.parse(leaf.validTo)
  const iss = distinguishedName(anchor.ca.subject)
  const claims = Object.freeze({
    iss,
    sub,
    subject_dn: subjectDn,
    issuer_dn: distinguishedName(leaf.issuer),
    san_uri: Object.freeze(uris),
    san_dns: Object.freeze(names.filter(([type]) => type === 'DNS').map(([, value]) => value)),
    serial: leaf.serialNumber,
    not_after: Math.floor(notAfterMs / 1000),
    fingerprint_sha256: leaf.fingerprint256,
  })
  const identity: Identity = Object.freeze({ issuerName: anchor.issuer.name, iss, sub, clientId: null, claims, expiresAt: Math.floor(notAfterMs / 1000) })
  // Every CA of the chain was in its dates when the chain was checked; one may expire before the
  // leaf, and the connection (or a session resumed from it) outlive it.
  const cas = path.slice(1)
  const caNotBeforeMs = Math.max(...cas.map((certificate) => Date.parse(certificate.validFrom)))
  const caNotAfterMs = Math.min(...cas.map((certificate) => Date.parse(certificate.validTo)))
  return { identity, notBeforeMs, notAfterMs, caNotBeforeMs, caNotAfterMs }
}

/** A field's every line, in order (Node's raw list keeps each; names compared case-insensitively). */
function headerLines(rawHeaders: readonly string[], lowerName: string): string[] {
  const lines: string[] = []
  for (let i = 0; i < rawHeaders.length; i += 2) {
    const name = rawHeaders[i] as string
    if (name.length === lowerName.length && name.toLowerCase() === lowerName) lines.push(rawHeaders[i + 1] as string)
  }
  return lines
}

function verdictCode(error: Error | string | null | undefined): string {
  return typeof error === 'string' ? error : (error as (Error & { code?: string }) | null | undefined)?.code ?? String(error?.message ?? 'unknown')
}

/**
 * A verdict (OpenSSL's X509_V_ERR_* names, as Node gives them; certificate-path.ts uses the same) in
 * words a client's operator can act on. `trustedBy`: what the certificate had to chain to.
 */
function whyNotAuthorized(code: string, leaf: X509Certificate, nowMs: number, trustedBy = 'server.tls.client_ca'): string {
  const subject = truncateClientValue(distinguishedName(leaf.subject))
  // OpenSSL's verdict is of the whole chain: a leaf within its dates was refused for a CA's.
  const ofItsCa = (what: string) => `The client certificate "${subject}" chains to a CA certificate that ${what} (its issuer: "${truncateClientValue(distinguishedName(leaf.issuer))}").`
  switch (code) {
    case 'CERT_HAS_EXPIRED':
      if (Date.parse(leaf.validTo) >= nowMs) return ofItsCa('has expired')
      return `The client certificate "${subject}" expired at ${new Date(leaf.validTo).toISOString()}.`
    case 'CERT_NOT_YET_VALID':
      if (Date.parse(leaf.validFrom) <= nowMs) return ofItsCa('is not valid yet')
      return `The client certificate "${subject}" is not valid before ${new Date(leaf.validFrom).toISOString()}.`
    case 'UNABLE_TO_GET_ISSUER_CERT':
    case 'UNABLE_TO_GET_ISSUER_CERT_LOCALLY':
    case 'UNABLE_TO_VERIFY_LEAF_SIGNATURE':
    case 'SELF_SIGNED_CERT_IN_CHAIN':
    case 'DEPTH_ZERO_SELF_SIGNED_CERT':
    case 'CERT_SIGNATURE_FAILURE':
      return `The client certificate "${subject}" is signed by another CA ("${truncateClientValue(distinguishedName(leaf.issuer))}"), not one of ${trustedBy}.`
    case 'INVALID_PURPOSE':
      return `The client certificate "${subject}" is not for client authentication (its extended key usage lacks clientAuth).`
    case 'KEYUSAGE_NO_DIGITAL_SIGNATURE':
      return `The client certificate "${subject}" is not for client authentication (its key usage has neither digitalSignature nor keyAgreement).`
    case 'NS_CERT_TYPE_NO_SSL_CLIENT':
      return `The client certificate "${subject}" is not for client authentication (its Netscape cert type lacks SSL client).`
    case 'INVALID_CA':
      return `The client certificate "${subject}" chains through a certificate that is no CA (basicConstraints CA:TRUE) (its issuer: "${truncateClientValue(distinguishedName(leaf.issuer))}").`
    case 'EE_KEY_TOO_SMALL':
      return `The client certificate "${subject}" has a key too small to be secure (RSA or DSA under 2048 bits, EC under 224).`
    case 'CA_KEY_TOO_SMALL':
      return ofItsCa('has a key too small to be secure (RSA or DSA under 2048 bits, EC under 224)')
    case 'CA_MD_TOO_WEAK':
      return `The client certificate "${subject}", or a CA certificate of its chain, is signed with a digest too weak to be secure (MD5 or SHA-1).`
    case 'CERT_REVOKED':
      return `The client certificate "${subject}", or a CA certificate of its chain, is revoked: its CA's CRL (server.tls.client_crl) lists it.`
    case 'UNABLE_TO_GET_CRL':
      return `The client certificate "${subject}" chains through a CA that has no CRL in server.tls.client_crl: with CRLs, a certificate is accepted only where its CA's CRL says it is not revoked.`
    case 'CRL_HAS_EXPIRED':
      return `The client certificate "${subject}" chains through a CA whose CRL in server.tls.client_crl is out of date (past its nextUpdate).`
    case 'CRL_NOT_YET_VALID':
      return `The client certificate "${subject}" chains through a CA whose CRL in server.tls.client_crl is not valid yet.`
    case 'CRL_SIGNATURE_FAILURE':
      return `The client certificate "${subject}" chains through a CA whose CRL in server.tls.client_crl does not verify with that CA's key.`
    case 'NAME_CONSTRAINTS_UNCHECKED':
      return ofItsCa('has name constraints, which are not checked for a forwarded certificate: such a chain is refused')
    default:
      return `The client certificate "${subject}" was not accepted (${code}).`
  }
}

/** The peer's chain, the leaf first, up to the trust anchor Node found for it. */
function peerChain(connection: TlsConnection): X509Certificate[] {
  if (typeof connection.getPeerCertificate !== 'function') return []
  const chain: X509Certificate[] = []
  let certificate: DetailedPeerCertificate | undefined = connection.getPeerCertificate(true)
  for (let depth = 0; certificate?.fingerprint256 && depth < MAX_CHAIN_DEPTH; depth++) {
    chain.push(new X509Certificate(certificate.raw))
    if (certificate.issuerCertificate === certificate) break
    certificate = certificate.issuerCertificate
  }
  return chain
}

/**
 * Node's `subjectAltName`: `TYPE:value` entries joined by ", ", a value with special characters
 * written as a JSON string (Node quotes them since CVE-2021-44532, so a comma cannot forge an entry).
 */
export function subjectAltNames(text: string | undefined): Array<[string, string]> {
  const names: Array<[string, string]> = []
  if (!text) return names
  let at = 0
  while (at < text.length) {
    const colon = text.indexOf(':', at)
    if (colon === -1) break
    const type = text.slice(at, colon)
    at = colon + 1
    let value: string
    if (text[at] === '"') {
      let end = at + 1
      while (end < text.length && text[end] !== '"') end += text[end] === '\\' ? 2 : 1
      value = JSON.parse(text.slice(at, end + 1)) as string
      at = end + 1
    } else {
      const end = text.indexOf(', ', at)
      value = end === -1 ? text.slice(at) : text.slice(at, end)
      at = end === -1 ? text.length : end
    }
    if (text.startsWith(', ', at)) at += 2
    names.push([type, value])
  }
  return names
}

/**
 * The subject's CNs as their values, not as printed: `subject` writes a control character as a hex
 * escape (`batch\01nightly`), which read back one character at a time named another workload
 * (`batch01nightly`). The legacy object holds the decoded values.
 */
function commonNamesOf(leaf: X509Certificate): string[] {
  const cn = (leaf.toLegacyObject().subject as Record<string, string | string[] | undefined> | undefined)?.CN
  return cn === undefined ? [] : Array.isArray(cn) ? cn : [cn]
}
