// The targets of an upstream (SPEC "Upstreams, added"): each copy of the service has its own
// keep-alive pool and its own state. A target takes requests while it is `available`: healthy by
// its active checks (health.ts) and not ejected by its passive record here. Both are kept as
// booleans that change on events (a check, a failure, a timer), so choosing a target reads no clock.
import { subscribe } from 'node:diagnostics_channel'
import type { Socket } from 'node:net'
import type { buildConnector as BuildConnector } from 'undici'
import type { UpstreamTlsMaterial } from '../config/index.ts'
import type { Logger } from '../telemetry/index.ts'
import type { EjectionShare } from './eject-share.ts'
import { answerBegins, readPastContinues } from './interim.ts'
import { buildConnector, Client, Pool } from './undici-parts.ts'

export interface Target {
  /** The target's origin (`https://10.0.0.5:9500`): its metrics label and what it is called in logs. */
  readonly url: string
  readonly pool: Pool
  /**
   * The health checks' own connection (health.ts), made at the first check: through the pool, a
   * check waited behind requests that held every connection (event streams, long downloads), and
   * undici's queue heeds no abort signal, so the checks stalled with no verdict, the target held
   * in rotation whatever its health said (a probe).
   */
  checks: Client | null
  /** How the pool connects (connect_timeout, TLS): the checks' connection too, within the check's timeout. */
  readonly connectOptions: Readonly<BuildConnector.BuildOptions> & { readonly timeout: number }
  /** The target's own hash, mixed with a principal's for rendezvous hashing (balance.ts). */
  readonly seed: number
  /** Active health checks' verdict (true until they say otherwise, and without checks). */
  healthy: boolean
  /** Out of rotation after `eject.after` consecutive failures, until `eject.for` has passed. */
  ejected: boolean
  /** healthy && !ejected: read on every request. */
  available: boolean
  inFlight: number
  /** Its pool's size (max_connections). */
  readonly connections: number
  /**
   * Tries handed to its pool and not yet let go by it (inFlight but for WebSocket tunnels, which
   * take no pool connection): past `connections`, a try waits in the pool's queue (dispatch.ts).
   */
  pooled: number
  consecutiveFailures: number
  /** Its counters for the metrics, shared with the targets a reload makes for the same upstream and origin. */
  readonly counts: TargetCounts
  readmit: NodeJS.Timeout | null
}

/** Tries sent, failed tries, ejections: counters that outlive the target (pools.ts). */
export interface TargetCounts {
  requests: number
  failures: number
  ejections: number
}

export function newTargetCounts(): TargetCounts {
  return { requests: 0, failures: 0, ejections: 0 }
}

export interface TargetPoolOptions {
  connections: number
  connectTimeoutMs: number
  timeoutMs: number
  tls: UpstreamTlsMaterial | null
}

export function createTarget(origin: string, options: TargetPoolOptions, counts: TargetCounts = newTargetCounts()): Target {
  const connectOptions = { timeout: options.connectTimeoutMs, ...(origin.startsWith('https:') ? tlsConnectOptions(options.tls) : {}) }
  return {
    url: origin,
    checks: null,
    connectOptions,
    pool: new Pool(origin, {
      connections: options.connections,
      connect: resetsAreCuts(buildConnector(connectOptions)),
      headersTimeout: options.timeoutMs,
      bodyTimeout: options.timeoutMs,
      keepAliveTimeout: 4_000,
      pipelining: 1,
    }),
    seed: hashString(origin),
    healthy: true,
    ejected: false,
    available: true,
    inFlight: 0,
    connections: options.connections,
    pooled: 0,
    consecutiveFailures: 0,
    counts,
    readmit: null,
  }
}

/**
 * undici ends a response that runs until the connection closes (no Content-Length, not chunked) as
 * complete when the connection is reset (ECONNRESET while the answer is read, client-h1.js, for
 * macOS), so an upstream that died mid-answer reached the client as a whole answer, audited allow (a
 * probe). A reset on an upstream's socket is renamed UND_ERR_SOCKET before undici sees it: still a
 * `reset` to the retry and ejection rules (errors.ts), but the answer is cut, as a FIN is not.
 *
 * Under TLS 1.3 the client's handshake is over before the server has checked its certificate, so
 * an upstream that wants one (or refuses ours) answers the request with an alert and a close, and
 * undici reports only "other side closed" (the alert's error is replaced by its own): the error it
 * reports carries the alert's code and reason instead, which errors.ts reads as the refused
 * handshake it is (the request was never read: a connect failure, retried as one). A probe saw
 * "failed mid-exchange", nothing saying a certificate was wanted.
 */
/**
 * The alerts a TLS 1.3 server sends while it checks the client's certificate, before it reads any
 * request. Any other alert may follow a request the upstream has read: still a reset, never retried
 * for a POST (upstream-retry-tls.test.ts).
 */
const HANDSHAKE_REFUSALS = /^ERR_SSL_TLSV1[3]?_ALERT_(CERTIFICATE_REQUIRED|BAD_CERTIFICATE|UNKNOWN_CA|CERTIFICATE_EXPIRED|CERTIFICATE_REVOKED|CERTIFICATE_UNKNOWN|UNSUPPORTED_CERTIFICATE|DECRYPT_ERROR|HANDSHAKE_FAILURE)$|^ERR_SSL_SSLV3_ALERT_(BAD_CERTIFICATE|CERTIFICATE_EXPIRED|CERTIFICATE_REVOKED|CERTIFICATE_UNKNOWN|UNSUPPORTED_CERTIFICATE|HANDSHAKE_FAILURE)$/

type SocketError = NodeJS.ErrnoException & { reason?: string; brokeIdleClose?: true }

/**
 * An error on an upstream's socket after its handshake, renamed for undici and errors.ts (see
 * resetsAreCuts); answers the handshake refusal seen so far. Any other TLS error after the handshake
 * (an alert, a bad record) may follow a request the upstream has read: a reset, never a connect
 * failure, which would send a POST to the next target (found by review).
 */
export function renameSocketError(err: SocketError, refusal: SocketError | null): SocketError | null {
  if (err.code === 'ECONNRESET') err.code = 'UND_ERR_SOCKET'
  if (err.code !== undefined && HANDSHAKE_REFUSALS.test(err.code)) return err
  if (err.code?.startsWith('ERR_SSL_')) err.code = 'UND_ERR_SOCKET'
  else if (refusal !== null && err.code === 'UND_ERR_SOCKET') {
    err.code = refusal.code
    err.message = `the upstream ended the connection with a TLS alert: ${refusal.reason ?? refusal.message}`
  }
  return refusal
}

/**
 * What a target's connection had read when its latest request was sent (pipelining 1: the request in
 * flight), set on the connections resetsAreCuts makes by undici's sendHeaders channel, published as
 * it writes a request.
 */
const readWhenSent = Symbol('bytes read when the latest request was sent')
type SentOn = Socket & { [readWhenSent]?: number }
subscribe('undici:client:sendHeaders', (message) => {
  const socket = (message as { socket: SentOn }).socket
  if (socket[readWhenSent] !== undefined) socket[readWhenSent] = socket.bytesRead
  answerBegins(socket)
})

/**
 * A connection that broke with its request's answer not begun, after earlier answers: a kept-alive
 * connection the upstream closed as idle while the request was on its way (dispatch.ts sends it
 * again). A TLS socket counts what it decrypted, so its handshake is no answer read.
 */
function brokeAsIdle(socket: SentOn): boolean {
  const read = socket[readWhenSent]
  return read !== undefined && read > 0 && socket.bytesRead === read
}

function resetsAreCuts(connect: BuildConnector.connector): BuildConnector.connector {
  return (options, callback) =>
    connect(options, (...args) => {
      // undefined, not null, when the connection failed
      const socket = args[1] as SentOn | null | undefined
      if (socket) {
        let refusal: SocketError | null = null
        socket[readWhenSent] = 0
        readPastContinues(socket)
        socket.prependListener('error', (err: SocketError) => {
          refusal = renameSocketError(err, refusal)
          if (brokeAsIdle(socket)) err.brokeIdleClose = true
        })
      }
      callback(...args)
    })
}

/**
 * What node:tls is given for an https target. rejectUnauthorized is always set: left out, Node
 * would read NODE_TLS_REJECT_UNAUTHORIZED=0 from the environment and stop verifying, silently.
 * There is no key that turns verification off.
 */
export function tlsConnectOptions(tls: UpstreamTlsMaterial | null): { rejectUnauthorized: true; ca?: string; cert?: string; key?: string; servername?: string } {
  if (tls === null) return { rejectUnauthorized: true }
  return {
    rejectUnauthorized: true,
    ...(tls.ca === undefined ? {} : { ca: tls.ca }),
    ...(tls.cert === undefined ? {} : { cert: tls.cert, key: tls.key }),
    ...(tls.servername === undefined ? {} : { servername: tls.servername }),
  }
}

/** What a target's state changes are told to: the upstream's name and settings, and the log. */
export interface TargetOwner {
  readonly name: string
  readonly ejection: { readonly after: number; readonly forMs: number } | null
  readonly logger: Logger
  /** With server.workers: this worker's ejections told to the others (eject-share.ts); null alone. */
  readonly ejectionShare?: EjectionShare | null
}

/** A try that got an answer below 500: the failure streak is over. */
export function targetSucceeded(target: Target): void {
  target.consecutiveFailures = 0
}

/** A try that failed (no connection, a reset or timeout before the answer, an answer that is not HTTP, a 5xx): counted, and maybe ejected. */
export function targetFailed(owner: TargetOwner, target: Target): void {
  target.counts.failures++
  const ejection = owner.ejection
  if (ejection === null || target.ejected) return
  if (++target.consecutiveFailures < ejection.after) return
  target.counts.ejections++
  owner.logger.warn({ upstream: owner.name, target: target.url, failures: target.consecutiveFailures, for_ms: ejection.forMs }, 'upstream target ejected after consecutive failures')
  eject(owner, target, ejection.forMs)
  owner.ejectionShare?.post(target.url)
}

/** Another worker ejected this target (eject-share.ts): out here too, for as long; counted once, by that worker. */
export function targetEjectedElsewhere(owner: TargetOwner, target: Target): void {
  const ejection = owner.ejection
  if (ejection === null || target.ejected) return
  owner.logger.info({ upstream: owner.name, target: target.url, for_ms: ejection.forMs }, 'upstream target ejected by another worker')
  eject(owner, target, ejection.forMs)
}

function eject(owner: TargetOwner, target: Target, forMs: number): void {
  target.ejected = true
  target.available = false
  target.readmit = setTimeout(() => {
    target.readmit = null
    target.ejected = false
    target.consecutiveFailures = 0
    target.available = target.healthy
    owner.logger.info({ upstream: owner.name, target: target.url }, 'upstream target back in rotation after its ejection')
  }, forMs)
  target.readmit.unref()
}

/** The active checks' verdict changed. */
export function setTargetHealth(owner: TargetOwner, target: Target, healthy: boolean, why: string): void {
  if (target.healthy === healthy) return
  target.healthy = healthy
  target.available = healthy && !target.ejected
  if (healthy) owner.logger.info({ upstream: owner.name, target: target.url }, 'upstream target healthy again')
  else owner.logger.warn({ upstream: owner.name, target: target.url, reason: why }, 'upstream target unhealthy')
}

export async function closeTarget(target: Target): Promise<void> {
  if (target.readmit !== null) clearTimeout(target.readmit)
  target.readmit = null
  const checks = target.checks
  target.checks = null
  await Promise.all([target.pool.close(), checks?.destroy()])
}

/**
 * The connection the health checks go over, made at the first: TLS as the pool's, and a connect
 * timeout within the check's own `timeout`. undici's queue heeds no abort signal while a
 * connection is being made, so with connect_timeout (5 s) a target that answered no SYN had each
 * check last 5 s whatever its `timeout` (300 ms in a probe: taken out after 11.5 s, not ~1 s).
 */
export function checksClient(target: Target, timeoutMs: number): Client {
  if (target.checks !== null) return target.checks
  const connect = resetsAreCuts(buildConnector({ ...target.connectOptions, timeout: Math.min(target.connectOptions.timeout, timeoutMs) }))
  return (target.checks = new Client(target.url, { connect, pipelining: 1, keepAliveTimeout: 4_000 }))
}

/** FNV-1a, 32 bits: a cheap, well-spread hash for short strings (a principal, a URL). */
export function hashString(text: string, seed = 0x811c9dc5): number {
  let hash = seed
  for (let i = 0; i < text.length; i++) {
    hash ^= text.charCodeAt(i)
    hash = Math.imul(hash, 0x01000193)
  }
  return hash >>> 0
}
