// undici's and node:http's failures become SPEC's codes here, where they enter our code, and are
// sorted into the kinds a retry and passive ejection look at.
import { GatewayError } from '../errors/index.ts'
import type { Failure } from './retry.ts'

/** What the messages name: the upstream (a target's address is not the client's business). */
interface Named {
  readonly name: string
}

const CONNECT_FAILURES = new Set(['ECONNREFUSED', 'ENOTFOUND', 'EHOSTUNREACH', 'ENETUNREACH', 'UND_ERR_CONNECT_TIMEOUT', 'EADDRNOTAVAIL'])

/** Whether an error code says no connection was made, so nothing of a request was sent (an MCP server's client reads it too). */
export function isConnectFailureCode(code: string): boolean {
  return CONNECT_FAILURES.has(code) || code.startsWith('EAI_')
}

/**
 * The target's host name did not resolve: node:dns's lookup failed, however (ENOTFOUND for no such
 * name, getaddrinfo's EAI_ codes, EINVAL for a name libuv refuses), so no connection was tried.
 * Only ENOTFOUND and EAI_AGAIN were known: a name server that refused (EAI_FAIL) was "failed
 * mid-exchange", never a failure of the target's, and no POST followed it to the next target.
 */
function lookupFailed(err: Error, code: string): boolean {
  return (err as { syscall?: string }).syscall === 'getaddrinfo' || code === 'ENOTFOUND' || code.startsWith('EAI_')
}
/** OpenSSL's verification results as Node reports them (X509_V_ERR_* without the prefix), and Node's own. */
const CERTIFICATE_FAILURES = new Set([
  'UNABLE_TO_GET_ISSUER_CERT', 'UNABLE_TO_GET_ISSUER_CERT_LOCALLY', 'UNABLE_TO_VERIFY_LEAF_SIGNATURE',
  'CERT_SIGNATURE_FAILURE', 'CERT_NOT_YET_VALID', 'CERT_HAS_EXPIRED', 'DEPTH_ZERO_SELF_SIGNED_CERT',
  'SELF_SIGNED_CERT_IN_CHAIN', 'CERT_UNTRUSTED', 'CERT_REVOKED', 'INVALID_CA', 'HOSTNAME_MISMATCH',
  'CERT_CHAIN_TOO_LONG', 'INVALID_PURPOSE', 'CERT_REJECTED', 'ERR_TLS_CERT_ALTNAME_INVALID',
])
const RESETS = new Set(['ECONNRESET', 'EPIPE', 'UND_ERR_SOCKET', 'UND_ERR_CLOSED'])

function codeOf(err: Error): string {
  return (err as { code?: string }).code ?? ''
}

/** A failed TLS handshake: the upstream's certificate, or the client certificate it wanted. */
function tlsFailure(code: string): boolean {
  return CERTIFICATE_FAILURES.has(code) || code.startsWith('ERR_SSL_') || code.startsWith('ERR_TLS_')
}

/**
 * undici's HTTP/1.1 parser refused what the upstream sent: no HTTP at all (a port another service
 * took: an SSH banner) or a malformed head. Only the upstream's bytes are parsed. (Its `code` is
 * mostly unset: undici 7 looks the llhttp error up by number in a table keyed by name.)
 */
function notHttp(err: Error): boolean {
  return err.name === 'HTTPParserError'
}

/**
 * The kind of a failure before the answer began, for retries and ejection: no connection (nothing
 * of the request was read: refused, unreachable, connect timeout, a TLS handshake that failed), a
 * connection that broke, or no answer in time. Null for what is no fault of the target.
 */
export function failureOf(err: Error): Exclude<Failure, number> | null {
  const code = codeOf(err)
  if (CONNECT_FAILURES.has(code) || lookupFailed(err, code) || tlsFailure(code)) return 'connect_failure'
  if (code === 'UND_ERR_HEADERS_TIMEOUT') return 'timeout'
  // An answer that is not HTTP broke the exchange off as a reset does, after the request was sent:
  // the target's fault (eject), and a GET may go on (retries on `reset`); it was no failure at all,
  // so a target answering with another protocol kept its share for good (a probe).
  if (RESETS.has(code) || notHttp(err)) return 'reset'
  return null
}

/**
 * Whether a try broke on a kept-alive connection before any byte of its answer: the upstream closed
 * the connection as idle while the request was on its way (targets.ts marks the socket's error).
 */
export function brokeKeptAlive(err: Error): boolean {
  return (err as { brokeIdleClose?: true }).brokeIdleClose === true
}

/** undici's error codes → SPEC's 502/504 codes. */
export function translateUndiciError(err: Error, upstream: Named): GatewayError {
  const code = codeOf(err)
  if (tlsFailure(code)) {
    return new GatewayError('upstream_unavailable', { detail: `Upstream "${upstream.name}" is unavailable: the TLS handshake failed (${code}: ${err.message}).`, cause: err })
  }
  if (lookupFailed(err, code)) {
    return new GatewayError('upstream_unavailable', { detail: `Upstream "${upstream.name}" is unavailable: its host name could not be resolved (${code}).`, cause: err })
  }
  if (CONNECT_FAILURES.has(code)) {
    const why = code === 'UND_ERR_CONNECT_TIMEOUT' ? 'the connection timed out' : `the connection failed (${code})`
    return new GatewayError('upstream_unavailable', { detail: `Upstream "${upstream.name}" is unavailable: ${why}.`, cause: err })
  }
  if (code === 'UND_ERR_HEADERS_TIMEOUT' || code === 'UND_ERR_BODY_TIMEOUT') {
    return new GatewayError('upstream_timeout', { detail: `Upstream "${upstream.name}" did not answer in time.`, cause: err })
  }
  if (code === 'UND_ERR_HEADERS_OVERFLOW') {
    // undici reads at most 16 KiB of an answer's head (Node's default): said, not a mystery.
    return new GatewayError('upstream_error', { detail: `Upstream "${upstream.name}" answered with a head larger than the gateway reads (16 KiB).`, cause: err })
  }
  if (code === 'UND_ERR_SOCKET' && err.message === 'bad response') {
    // undici 7 drops the connection on any 100 Continue (no option); interim.ts takes out those
    // HTTP/1.1 allows before undici reads them, so one that reaches it here was malformed.
    return new GatewayError('upstream_error', { detail: `Upstream "${upstream.name}" answered 100 Continue with a head HTTP/1.1 does not allow (line ends other than CRLF, a folded line, a field name that is no token), which the gateway does not read past.`, cause: err })
  }
  if (notHttp(err)) {
    // The parser's reason, never the bytes (undici keeps those apart, in err.data).
    const reason = /^Response does not match the HTTP\/1\.1 protocol \((.*)\)$/.exec(err.message)?.[1] ?? ''
    return new GatewayError('upstream_error', { detail: `Upstream "${upstream.name}" answered with something that is not HTTP/1.1${reason === '' ? '' : ` (${reason})`}.`, cause: err })
  }
  if (code === 'UND_ERR_RES_CONTENT_LENGTH_MISMATCH') {
    // A body cut short or run long, or framed twice (Content-Length beside chunked, two lengths):
    // said, rather than "failed mid-exchange", which named nothing to look for (a probe).
    return new GatewayError('upstream_error', { detail: `Upstream "${upstream.name}" answered with a body that did not match its Content-Length (cut short, too long, or framed by Transfer-Encoding or a second Content-Length as well).`, cause: err })
  }
  if (code === 'UND_ERR_REQ_CONTENT_LENGTH_MISMATCH') {
    return new GatewayError('bad_request', { detail: 'The request body did not match its Content-Length.', cause: err })
  }
  return new GatewayError('upstream_error', { detail: `Upstream "${upstream.name}" failed mid-exchange.`, cause: err })
}

/** max_concurrent reached: refused before anything is sent. */
export function upstreamSaturated(upstream: Named & { readonly maxConcurrent: number }, retryAfter: boolean): GatewayError {
  return new GatewayError('upstream_saturated', {
    detail: `Upstream "${upstream.name}" already has ${upstream.maxConcurrent} request${upstream.maxConcurrent === 1 ? '' : 's'} in flight.`,
    headers: retryAfter ? { 'retry-after': '1' } : undefined,
  })
}

/**
 * SPEC: no healthy target is 503 upstream_unavailable at once, without a connection attempt.
 * Retry-After: when the first ejected target is due back, else the next health check.
 */
export function noHealthyTarget(upstream: Named & { readonly targets: readonly unknown[]; readonly retryAfterSeconds: number }): GatewayError {
  const count = upstream.targets.length
  return new GatewayError('upstream_unavailable', {
    status: 503,
    detail: `Upstream "${upstream.name}" has no healthy target (${count === 1 ? 'its one target is' : `all ${count} are`} failing health checks or ejected); no connection was tried.`,
    headers: { 'retry-after': String(upstream.retryAfterSeconds) },
  })
}

/**
 * How many times a request may have come through this gateway already (its own Via entries,
 * request.ts ownHops) and still be forwarded: once or twice is an upstream that calls back, this many a loop.
 */
export const MAX_BOUNCER_HOPS = 8

/**
 * An upstream url that leads back to the gateway (a port swapped, a load balancer's name): each
 * request was forwarded to the gateway again until the upstream's pool was full, one request
 * holding every connection for `timeout` (a probe). RFC 9110 §7.6.3: Via is how a proxy sees it.
 */
export function forwardingLoop(upstream: Named): GatewayError {
  return new GatewayError('upstream_error', { detail: `The request has come through this gateway ${MAX_BOUNCER_HOPS} times already (its Via): a forwarding loop. Does upstream "${upstream.name}" lead back to the gateway?` })
}
