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
import type { X509Certificate } from 'node:crypto'
import type { DetailedPeerCertificate } from 'node:tls'
import { distinguishedName } from '../config/index.ts'
import { GatewayError, truncateClientValue } from '../errors/index.ts'
import type { Identity } from '../request/index.ts'
import type { Authenticated, CredentialInput, CredentialVerifier } from './authenticate.ts'

/** An x509 issuer: its name (trust rules' `issuer`) and the CA certificates it vouches for. */
export interface X509Issuer {
  readonly name: string
  readonly cas: readonly X509Certificate[]
}

/** What node:tls's TLSSocket offers (an HTTP/2 session's socket forwards the same). */
interface TlsConnection {
  readonly encrypted?: boolean
  readonly authorized?: boolean
  readonly authorizationError?: Error | string | null
  getPeerX509Certificate?(): X509Certificate | undefined
  getPeerCertificate?(detailed: true): DetailedPeerCertificate
}

/** What one connection's certificate proves: an identity within its validity, or why not. */
type PeerOutcome =
  | { readonly identity: Identity; readonly notBeforeMs: number; readonly notAfterMs: number; readonly caNotAfterMs: number }
  | { readonly refusal: string }

/** Chains are short; a longer walk is a loop in what the peer sent. */
const MAX_CHAIN_DEPTH = 10

/** SPIFFE ID §2.3: implementations support IDs of up to 2048 bytes, and should not make longer ones. */
const MAX_SUBJECT_BYTES = 2048

/** `scheme://…` (RFC 3986 §3): how a SPIFFE ID, or any URI a trust rule's subject could name, begins. */
const URI_WITH_AUTHORITY = /^[a-z][a-z0-9+.-]*:\/\//i

export function clientCertVerifier(issuers: readonly X509Issuer[], now: () => number = Date.now): CredentialVerifier {
  const byFingerprint = new Map<string, { issuer: X509Issuer; ca: X509Certificate }>()
  for (const issuer of issuers) for (const ca of issuer.cas) if (!byFingerprint.has(ca.fingerprint256)) byFingerprint.set(ca.fingerprint256, { issuer, ca })
  // Only connections that presented a certificate get an entry.
  const outcomes = new WeakMap<object, PeerOutcome>()

  /** What the connection's certificate proves; undefined when it presented none. */
  function outcomeOf(connection: TlsConnection): PeerOutcome | undefined {
    let outcome = outcomes.get(connection)
    if (outcome === undefined && peerCertificate(connection) !== undefined) {
      outcome = examine(connection, byFingerprint, now())
      outcomes.set(connection, outcome)
    }
    return outcome
  }

  return {
    kind: 'client_cert',
    // A forward-auth check's connection is the proxy's: its certificate is the proxy's own
    // workload identity, not the end user's, so there it is no credential at all.
    presentIn: (input) => !input.forwardAuth && outcomeOf(input.socket as TlsConnection) !== undefined,
    async authenticate(input: CredentialInput): Promise<Authenticated> {
      if (input.forwardAuth) {
        throw refusal('A forward-auth check describes a request the proxy received: the client certificate on this connection is the proxy\'s own, not the caller\'s, so it proves nothing about the caller.')
      }
      const connection = input.socket as TlsConnection
      const outcome = outcomeOf(connection)
      if (outcome === undefined) {
        throw refusal(connection.encrypted
          ? 'This route needs a client certificate (TLS client authentication); the connection presented none.'
          : 'This route needs a client certificate, and this connection is not TLS.')
      }
      if ('refusal' in outcome) throw refusal(outcome.refusal)
      const nowMs = now()
      // The connection may outlive its certificate: checked on every request, not only at the handshake.
      if (nowMs > outcome.notAfterMs) throw refusal(`The client certificate expired at ${new Date(outcome.notAfterMs).toISOString()}.`)
      if (nowMs > outcome.caNotAfterMs) throw refusal(`The client certificate chains to a CA certificate that expired at ${new Date(outcome.caNotAfterMs).toISOString()}.`)
      if (nowMs < outcome.notBeforeMs) throw refusal(`The client certificate is not valid before ${new Date(outcome.notBeforeMs).toISOString()}.`)
      return { identity: outcome.identity, credential: 'client_cert' }
    },
  }
}

function peerCertificate(connection: TlsConnection): X509Certificate | undefined {
  return typeof connection.getPeerX509Certificate === 'function' ? connection.getPeerX509Certificate() : undefined
}

function refusal(detail: string): GatewayError {
  return new GatewayError('client_cert_required', { detail })
}

function examine(connection: TlsConnection, byFingerprint: ReadonlyMap<string, { issuer: X509Issuer; ca: X509Certificate }>, nowMs: number): PeerOutcome {
  const leaf = peerCertificate(connection) as X509Certificate
  const subjectDn = distinguishedName(leaf.subject)
  if (!connection.authorized) return { refusal: whyNotAuthorized(connection.authorizationError, leaf, nowMs) }
  const chain = peerChain(connection)
  const anchor = chain.map((certificate) => byFingerprint.get(certificate.fingerprint256)).find((found) => found !== undefined)
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
  // The handshake checked every CA of the chain then; one may expire before the leaf, and the
  // connection (or a session resumed from it) outlive it.
  const caNotAfterMs = Math.min(...chain.slice(1).map((certificate) => Date.parse(certificate.valid_to)))
  return { identity, notBeforeMs, notAfterMs, caNotAfterMs }
}

/** OpenSSL's verdict (X509_V_ERR_*, as Node names it) in words a client's operator can act on. */
function whyNotAuthorized(error: Error | string | null | undefined, leaf: X509Certificate, nowMs: number): string {
  const code = typeof error === 'string' ? error : (error as (Error & { code?: string }) | null | undefined)?.code ?? String(error?.message ?? 'unknown')
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
      return `The client certificate "${subject}" is signed by another CA ("${truncateClientValue(distinguishedName(leaf.issuer))}"), not one of server.tls.client_ca.`
    case 'INVALID_PURPOSE':
      return `The client certificate "${subject}" is not for client authentication (its extended key usage lacks clientAuth).`
    default:
      return `The client certificate "${subject}" was not accepted (${code}).`
  }
}

/** The peer's chain, the leaf first, up to the trust anchor Node found for it. */
function peerChain(connection: TlsConnection): DetailedPeerCertificate[] {
  if (typeof connection.getPeerCertificate !== 'function') return []
  const chain: DetailedPeerCertificate[] = []
  let certificate: DetailedPeerCertificate | undefined = connection.getPeerCertificate(true)
  for (let depth = 0; certificate?.fingerprint256 && depth < MAX_CHAIN_DEPTH; depth++) {
    chain.push(certificate)
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
