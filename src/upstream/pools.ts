// An upstream and its targets, each with its own undici keep-alive pool. A reload reuses the
// upstream whose settings (and TLS files) did not change, so warm sockets, health, ejections and the
// retry budget survive it (the in-flight count goes by name, whatever changed: in-flight.ts; so do
// the metrics' counters, by name and origin); upstreams no longer used are closed once their
// requests finish, their health checks stopped.
import { createSharedResources, openByName, type SharedResources } from '../collections/index.ts'
import { loadTlsMaterial, type BalanceStrategy, type UpstreamTlsMaterial, type UpstreamConfig } from '../config/index.ts'
import { foldHeaderName } from '../http/index.ts'
import type { BackgroundTasks, Logger } from '../telemetry/index.ts'
import { startHealthChecks } from './health.ts'
import type { InFlight, InFlightCounts } from './in-flight.ts'
import type { HealthCheckRole } from './health-share.ts'
import { RETRY_RESERVE, retryPolicy, type RetryBudget, type RetryCounts, type RetryPolicy } from './retry.ts'
import { shareEjections, type EjectionShare } from './eject-share.ts'
import { credentialValues, rotatedOut } from './credentials.ts'
import { closeTarget, createTarget, newTargetCounts, targetEjectedElsewhere, type Target, type TargetCounts, type TargetOwner } from './targets.ts'

export interface Upstream extends TargetOwner, RetryBudget {
  readonly name: string
  readonly targets: readonly Target[]
  readonly balance: BalanceStrategy
  next: number
  /** The targets' path without a trailing slash ('' for none): prefixed to every forwarded path. */
  readonly basePath: string
  /** https targets' TLS settings (WebSocket handshakes use them too); null for the defaults. */
  readonly tls: UpstreamTlsMaterial | null
  readonly retry: RetryPolicy | null
  /** Retry-After of the 503 when no target is available: when a check or an ejection may bring one back. */
  readonly retryAfterSeconds: number
  readonly maxConcurrent: number
  readonly timeoutMs: number
  /** connect_timeout: the pools' connector has it; a WebSocket handshake (node:http) applies it itself. */
  readonly connectTimeoutMs: number
  readonly identityAssertion: boolean
  /** Configured header templates, possibly holding `${secret:NAME}`. */
  readonly headerTemplates: ReadonlyArray<readonly [name: string, template: string]>
  /** Folded names of the configured headers: a client header that folds to one of them is dropped. */
  readonly headerNames: ReadonlySet<string>
  /** Resolved configured headers as a flat [name, value, …] list; replaced when a secret rotates (setResolvedHeaders). */
  headers: string[]
  /**
   * The credential values among them, and those of the last rotations: an answer header that holds
   * one is withheld from the client (response.ts). Rotations overlap, so a rotated-out value is
   * still good at the upstream, which may still hold and echo it.
   */
  credentials: string[]
  /** The credential values among the headers sent now (setResolvedHeaders), and those rotations replaced (credentials.ts rotatedOut). */
  sentCredentials: string[]
  rotatedOutCredentials: string[]
  /** Its requests in flight, by name: the whole gateway's with server.workers (in-flight.ts). */
  readonly inFlight: InFlight
  /** Stops the health checks (a no-op without them). */
  stopChecks: () => void
  /** With server.workers and `eject`: ejections told to and heard from the other workers. */
  ejectionShare: EjectionShare | null
}

export type UpstreamRegistry = SharedResources<UpstreamConfig, Upstream>

export interface UpstreamDeps {
  logger: Logger
  /** Runs the health checks; null offline (bouncer explain), where nothing is checked. */
  background: BackgroundTasks | null
  /**
   * What this gateway does of the health checks: alone (one process), or with server.workers the
   * first worker probes and shares its verdicts and the others apply them (health-share.ts).
   */
  healthChecks: HealthCheckRole
  /** Where the upstreams' in-flight counts come from: this thread's, or the workers' table. */
  inFlight: InFlightCounts
}

/**
 * The metrics' counters of every upstream (by name) and target (by upstream and origin) the gateway
 * has run: a reload that changed an upstream's settings made its targets anew, and their counters
 * went back to 0 under the same labels (a counter reset to Prometheus), while the requests the
 * replaced upstream still finished were counted where no scrape read them (a probe).
 */
interface CountsLedger {
  target(upstream: string, origin: string): TargetCounts
  retries(upstream: string): RetryCounts
}

function countsLedger(): CountsLedger {
  const targets = new Map<string, TargetCounts>()
  const retries = new Map<string, RetryCounts>()
  return {
    target(upstream, origin) {
      const key = JSON.stringify([upstream, origin])
      let counts = targets.get(key)
      if (counts === undefined) targets.set(key, (counts = newTargetCounts()))
      return counts
    },
    retries(upstream) {
      let counts = retries.get(upstream)
      if (counts === undefined) retries.set(upstream, (counts = { retries: 0, retriesOverBudget: 0 }))
      return counts
    },
  }
}

/** Upstreams live as long as their settings: a reload keeps the targets (warm sockets, health) of one that did not change. */
export function createUpstreamRegistry(deps: UpstreamDeps): UpstreamRegistry {
  const ledger = countsLedger()
  // A reload that changes an upstream hands its rotated-out values over from the last one still open (handOverRotatedOut).
  const open = openByName<Upstream>()
  return createSharedResources({
    // The TLS files' contents count: a renewed certificate is picked up by a reload.
    fingerprint: (config) => JSON.stringify([config, config.tls ? loadTlsMaterial(config.tls).material : null]),
    create: (config) => {
      const upstream = createUpstream(config, deps, ledger)
      handOverRotatedOut(open.last(config.name), upstream)
      open.opened(config.name, upstream)
      return upstream
    },
    close: async (upstream) => {
      open.closed(upstream.name, upstream)
      deps.inFlight.release(upstream.name)
      upstream.stopChecks()
      upstream.ejectionShare?.close()
      await Promise.all(upstream.targets.map(closeTarget))
    },
  })
}

function createUpstream(config: UpstreamConfig, deps: UpstreamDeps, ledger: CountsLedger): Upstream {
  const urls = (config.targets ?? [config.url as string]).map((text) => new URL(text))
  const first = urls[0] as URL
  const tls = config.tls ? tlsOf(config.name, config.tls) : null
  const headerTemplates = Object.entries(config.headers).map(([name, value]) => [name.toLowerCase(), value] as const)
  const ejection = config.eject ? { after: config.eject.after, forMs: config.eject.for } : null
  const upstream: Upstream = {
    name: config.name,
    targets: urls.map((url) => createTarget(url.origin, { connections: config.max_connections, connectTimeoutMs: config.connect_timeout, timeoutMs: config.timeout, tls }, ledger.target(config.name, url.origin))),
    balance: config.balance,
    next: 0,
    basePath: first.pathname === '/' ? '' : first.pathname.replace(/\/+$/, ''),
    tls,
    retry: retryPolicy(config.retries),
    retryCredit: RETRY_RESERVE,
    retryCounts: ledger.retries(config.name),
    retryAfterSeconds: Math.max(1, Math.ceil(Math.min(config.health_check?.interval ?? Infinity, ejection?.forMs ?? Infinity, 30_000) / 1000)),
    ejection,
    logger: deps.logger,
    maxConcurrent: config.max_concurrent ?? Number.POSITIVE_INFINITY,
    timeoutMs: config.timeout,
    connectTimeoutMs: config.connect_timeout,
    identityAssertion: config.identity_assertion,
    headerTemplates,
    headerNames: new Set(headerTemplates.map(([name]) => foldHeaderName(name))),
    headers: headerTemplates.flatMap(([name, value]) => [name, value]),
    credentials: [],
    sentCredentials: [],
    rotatedOutCredentials: [],
    inFlight: deps.inFlight.acquire(config.name),
    stopChecks: () => {},
    ejectionShare: null,
  }
  if (config.health_check && deps.background) upstream.stopChecks = startHealthChecks(upstream, config.health_check, deps.background, deps.healthChecks)
  // Workers only (a role other than alone), and not offline: a passive ejection is the gateway's.
  if (ejection !== null && deps.background && deps.healthChecks !== 'alone') {
    upstream.ejectionShare = shareEjections(config, (url) => {
      const target = upstream.targets.find((t) => t.url === url)
      if (target) targetEjectedElsewhere(upstream, target)
    })
  }
  return upstream
}

/**
 * A reload that changed an upstream's settings makes it anew: the values its secrets' last rotations
 * replaced started empty, and an echo of one rotated out just before the reload reached the client.
 * With the header templates unchanged, the values sent and rotated out are carried over (the next
 * setResolvedHeaders, at compile, goes on from them).
 */
function handOverRotatedOut(previous: Upstream | undefined, next: Upstream): void {
  if (previous === undefined || JSON.stringify(previous.headerTemplates) !== JSON.stringify(next.headerTemplates)) return
  next.sentCredentials = previous.sentCredentials
  next.rotatedOutCredentials = previous.rotatedOutCredentials
}

/** The configured headers with their secrets (and env values) in place: at compile and after every secrets refresh. */
export function setResolvedHeaders(upstream: Upstream, resolve: (template: string) => string): void {
  const resolved = upstream.headerTemplates.map(([name, template]) => [name, resolve(template)] as const)
  upstream.headers = resolved.flat()
  const fromSecret = new Set(upstream.headerTemplates.filter(([, template]) => template.includes('${secret:')).map(([name]) => name))
  const sent = credentialValues(resolved, fromSecret)
  upstream.rotatedOutCredentials = rotatedOut(upstream.sentCredentials, upstream.rotatedOutCredentials, sent)
  upstream.sentCredentials = sent
  upstream.credentials = upstream.rotatedOutCredentials.length === 0 ? sent : [...sent, ...upstream.rotatedOutCredentials]
}

function tlsOf(name: string, config: NonNullable<UpstreamConfig['tls']>): UpstreamTlsMaterial {
  const { material, problems } = loadTlsMaterial(config)
  // bouncer check reports these with their line; here the files changed since, or were never checked.
  if (problems.length > 0) throw new Error(`upstream "${name}" tls: ${problems.map((p) => `${p.key}: ${p.message}`).join('; ')}`)
  return material
}
