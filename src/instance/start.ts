// A running gateway: config loaded and compiled, gateway and admin listeners bound, reload and
// graceful shutdown. `bouncer serve`, the demo and the integration tests all start gateways here.
import type { AddressInfo } from 'node:net'
import { withinDeadline } from '../collections/index.ts'
import { adminRoutes, consoleSignInOf, createAdminServer } from '../admin/index.ts'
import { changeSignerOf, createAuditLog, instanceIdOf, releaseAuditSpills, type AuditLog } from '../audit/index.ts'
import { listenUrl, loadConfigFile, type LoadedConfig } from '../config/index.ts'
import { createGatewayServer, createInternalDispatch, createRuntimeDeps, createTunnelRegistry, putInForce, type GatewayServer, type GatewayState, type Runtime } from '../gateway/index.ts'
import type { InternalDispatch } from '../request/index.ts'
import { createBackgroundTasks, createLogger, createMetrics, startTracing, type BackgroundTasks, type Logger } from '../telemetry/index.ts'
import { publishedKeysOf } from '../upstream/index.ts'
import type { SecretsRuntime } from '../secrets/index.ts'
import { limitsStoreFailures, watchLimitsAgreement, type LimitsAgreement } from '../limits/index.ts'
import { signersToPublish, type Live } from './live.ts'
import { claimAuditSpills, ConfigError, diagnosticLines, prepare, type PrepareDeps } from './prepare.ts'
import { watchConfigFile } from './config-watch.ts'
import { createReadiness } from './readiness.ts'
import { createReload, type ReloadResult, type StagedReload } from './reload.ts'
import { MCP_SESSION_KEY } from '../agents/index.ts'
import { DATASET_KEY, ownKeyStore, VIA_TOKEN } from './own-keys.ts'
import { startSecretsRefresh } from './secrets-refresh.ts'
import { bounded, CLOSE_STEP_MIN_MS, createShutdown } from './shutdown.ts'
import { listen } from './listen.ts'
import { FIRST_WORKER, workerAuditConfig, type WorkerRole } from './workers/role.ts'
import { releaseStartupGarbage } from './startup-garbage.ts'

export interface StartOptions {
  configFile: string
  /**
   * The config file as the caller has just loaded it (serve, to see how many workers it asks for):
   * taken once instead of reading and checking the file again. A handover rather than the value, so
   * the caller's frame does not keep the YAML document alive while the gateway starts.
   */
  loaded?: { take(): LoadedConfig | null }
  /** Override the listen ports (0 picks a free one). */
  port?: number
  adminPort?: number
  logger?: Logger
  env?: NodeJS.ProcessEnv
  /** One of server.workers' request-path workers (src/instance/workers): shares the port and the limits table. */
  worker?: WorkerRole
  /**
   * A worker's: how it reloads, whether its config or TLS files changed or POST /api/reload let a
   * caller in on its admin API (the primary passes that request through, so the admin check is the
   * one a single gateway makes): the primary reloads every worker, all of them or none.
   */
  reloadEverywhere?: () => Promise<ReloadResult>
}

export interface GatewayInstance {
  readonly url: string
  readonly adminUrl: string
  readonly state: GatewayState
  readonly logger: Logger
  /** Runs and reports the gateway's own work (SIGHUP reloads, timers): a failure never ends the process. */
  readonly background: BackgroundTasks
  reload(): Promise<ReloadResult>
  /** A reload prepared and held for a commit or an abort (server.workers: all workers, or none). */
  stageReload(text?: string, ticketKeys?: Buffer, generation?: number): Promise<StagedReload>
  /** Stops accepting, lets in-flight requests finish (bounded by server.shutdown_timeout), closes everything. */
  shutdown(): Promise<void>
}

export async function startGateway(options: StartOptions): Promise<GatewayInstance> {
  const env = options.env ?? process.env
  // Let go of once prepared: it holds the YAML document, most of what releaseStartupGarbage gives back.
  let loaded: LoadedConfig | null = options.loaded?.take() ?? (await loadConfigFile(options.configFile, env))
  if (!loaded.config) throw new ConfigError(diagnosticLines(loaded, 'error'))
  const config = loaded.config
  // Every log line and metric names the instance, as its audit records do (several behind one balancer);
  // a worker's lines name the worker too.
  const instance = instanceIdOf(config.audit.instance_id, env)
  const root = (options.logger ?? createLogger({ level: config.telemetry.log_level })).child({ instance })
  const logger = options.worker ? root.child({ worker: options.worker.id }) : root
  for (const line of diagnosticLines(loaded, 'warning')) logger.warn(line)
  // One process spills to spill_dir itself: what workers of an earlier run spilled is replayed too
  // (with server.workers, the primary has done this before any worker started).
  if (!options.worker) claimAuditSpills(config.audit, null, logger)

  /**
   * The gateway's once-a-process duties: scheduled rotations, the upstreams' health
   * checks (shared with the other workers), watching the config and TLS files, and comparing the
   * limits with the other instances'. With server.workers the first worker does them (a
   * replacement keeps its id): every worker watching asked for a reload each, so one edit or
   * renewal reloaded every worker twice (a probe).
   */
  const leads = options.worker === undefined || options.worker.id === FIRST_WORKER
  // Set once the gateway listens; until then no instance has been compared with.
  let limitsAgreement: LimitsAgreement | null = null
  const metrics = createMetrics({
    audit: () => audit.stats(), inFlight: () => state.inFlight, upstreams: () => state.runtime.upstreams.values(), instance, configDigest: () => state.runtime.configDigest,
    reloadRefused: () => (state.reloadRefused ?? null) !== null, tlsCertificate: () => gatewayServer.certificate(), clientCrlExpiries: () => gatewayServer.crlExpiries(), limitsStoreFailures,
    limitsConfigMismatch: leads ? () => limitsAgreement?.mismatched() ?? 0 : undefined,
  })
  const background = createBackgroundTasks(logger, metrics)
  const tracing = await startTracing(config.telemetry, logger, metrics)
  // One store for the keys the gateway makes itself: every worker's (the primary made it), kept across reloads.
  const keys = ownKeyStore(options.worker?.sharedKeys ? { buffer: options.worker.sharedKeys } : { forWorkers: false })
  const compile = createRuntimeDeps(logger, {
    background,
    sharedLimits: options.worker?.sharedLimits,
    apiKeyRevocations: options.worker?.apiKeyRevocations,
    keyWithdrawals: options.worker?.keyWithdrawals,
    mcpEndedSessions: options.worker?.mcpEndedSessions,
    upstreamInFlight: options.worker?.upstreamInFlight,
    healthChecks: !options.worker ? 'alone' : leads ? 'prober' : 'follower',
    mcpSessionKey: keys.get(MCP_SESSION_KEY),
    datasetKey: keys.get(DATASET_KEY),
    viaToken: keys.get(VIA_TOKEN),
    keySetEvents: { refreshed: (issuer) => metrics.keySetEvent(issuer, true), failed: (issuer) => metrics.keySetEvent(issuer, false) },
    // The gateway's JWKS endpoint publishes the keys of the signer in force (it changes on reload) and
    // of the runtimes a reload replaced while their requests may still sign, and for an assertion ttl
    // after they retire (live.ts signersToPublish).
    builtIns: {
      publishedKeys: () => publishedKeysOf(signersToPublish(live)),
      // MCP tool calls run through this gateway's own pipeline, and are audited in its log.
      dispatch: (request) => dispatchInternally(request),
      audit: (facts) => {
        audit.record(facts)
        // A tool call's outcome is counted as its record says (an approver's decision, made on the
        // admin listener, is no request to the gateway): only the MCP request's own POST was, 200 allow.
        if (facts.path.startsWith('/api/approvals/')) return
        metrics.observeToolCall(facts)
      },
      tracing,
    },
  })
  // A reload's assertion signer takes over the running one's key, and its exchange keys keep the running
  // ones published (set once the first config runs).
  let runningState: GatewayState | null = null
  const prepareDeps: PrepareDeps = {
    logger, background, env, compile, keys,
    runningSigner: () => runningState?.runtime.signing.assertions ?? null,
    runningExchangeKeys: () => runningState?.runtime.signing.exchangeKeys ?? null,
    runningSecrets: () => (runningState ? live.secrets : null),
    servingRuntimes: () => (runningState ? [runningState.runtime, ...live.replaced.keys()] : []),
  }

  /**
   * A start that fails before it listens gives back what it opened: the compile's function threads,
   * Redis clients, pools and timers, the audit worker, the tracer. Left open, they kept the process
   * alive: `bouncer serve` said why it did not start and never exited, so a supervisor's restart on
   * failure never came (found by a helper's review). The listen's own failure shuts down as a drain.
   */
  const failedStart = async (err: unknown, opened: { secrets?: SecretsRuntime; audit?: AuditLog } = {}): Promise<never> => {
    // Each within the drain's bound, as a shutdown's closes: a frozen audit database or a rotation
    // hook still running held the failure's report (and the exit) for ever.
    const ms = Math.max(config.server.shutdown_timeout, CLOSE_STEP_MIN_MS)
    await Promise.all([
      bounded(logger, 'closing the pools, key sets and stores', ms, () => compile.closeAll()),
      bounded(logger, 'closing the audit log', ms, () => opened.audit?.close()),
      bounded(logger, 'exporting the last traces', ms, () => tracing?.shutdown()),
      bounded(logger, 'closing the secrets store', ms, () => opened.secrets?.close()),
    ])
    throw err
  }
  // A worker runs the gateway's generation, which its primary gives it (a replacement's is not 1).
  const first = await prepare({ ...loaded, config }, prepareDeps, options.worker?.generation ?? 1).catch((err: unknown) => failedStart(err))
  // eslint-disable-next-line no-useless-assignment -- unreachable now, its YAML document goes in releaseStartupGarbage
  loaded = null
  const auditConfig = options.worker ? workerAuditConfig(config.audit, options.worker.id, options.worker.workers, env) : config.audit
  let audit: AuditLog
  try {
    audit = createAuditLog(auditConfig, logger, background, first.secrets.store, options.worker?.auditOutstanding) // its checkpoint key may live in the store
  } catch (err) {
    return failedStart(err, { secrets: first.secrets })
  }
  putInForce(prepareDeps.compile, first.runtime)
  const state: GatewayState = {
    runtime: first.runtime,
    logger,
    audit,
    metrics,
    tracing,
    draining: false,
    inFlight: 0,
    tunnels: new Set(),
    openTunnels: createTunnelRegistry(() => state.runtime, logger),
  }
  const dispatchInternally: InternalDispatch = createInternalDispatch(state)
  const live: Live = { state, secrets: first.secrets, admin: first.admin, replaced: new Map(), retiredSigners: new Map() }
  runningState = state

  let gatewayServer: GatewayServer
  try {
    gatewayServer = createGatewayServer(state, {
      // Refused by Node's parser before the pipeline (a header timeout, 431, a malformed request): audited and counted.
      // Under durability: sync its raw answer waits for the record's commit.
      onClientError: (rejected) => {
        metrics.countRefusedBeforeRouting(rejected.status)
        // Lost with the audit worker: queued again for its replacement; the refusal goes out either way.
        if (audit.durability === 'sync') return audit.commitRejected(rejected).catch(() => audit.recordRejected(rejected))
        audit.recordRejected(rejected)
      },
      // A renewed certificate is read by a reload, as on SIGHUP: one path checks and applies it.
      // With server.workers the first worker alone watches, as the reload it asks for is every worker's.
      onTlsFilesChanged: leads ? () => reloadWanted() : undefined,
      ticketKeys: options.worker?.ticketKeys,
      // A CRL going out of date is every worker's: the first alone says so.
      warnsOfCrls: leads,
    })
  } catch (err) {
    // Its TLS files, read again here, gone or not a key pair since the config was checked.
    return failedStart(err, { secrets: first.secrets, audit })
  }
  const adminServer = createAdminServer({
    logger,
    auth: () => live.admin,
    consoleSignIn: () => consoleSignInOf(state.runtime),
    authFailures: () => state.runtime.authFailures,
    routes: adminRoutes({ runtime: () => state.runtime, reload: () => reloadHere(), secretsStore: () => live.secrets.store, auditHead: () => audit.head(), auditConfig: () => config.audit }),
    metrics: () => metrics.render(),
    auditConfig: () => config.audit,
    changeSigner: () => changeSignerOf(config.audit, live.secrets.store),
    readiness: createReadiness(state, auditConfig.sinks.length),
    server: config.server,
    behindPrimary: options.worker !== undefined,
  })

  if (options.worker?.replacement) await keysTried(first.runtime, REPLACEMENT_KEYS_WAIT_MS)
  // A Redis limits store connects before the gateway listens, as before a reload's swap (bounded:
  // a Redis that is down delays the start by its connect timeout): listening first, the first
  // limited requests of a start or of a crashed worker's replacement met on_error (probe finding).
  await first.runtime.limiter.store.settled?.()
  // Before listening: no request waits on it (startup-garbage.ts).
  releaseStartupGarbage()
  const closeRegistries = () => compile.closeAll()
  const quiesceMcpSessions = () => compile.agents.quiesceSessions()
  let gatewayAddress: AddressInfo
  let adminAddress: AddressInfo | null
  try {
    gatewayAddress = await listen(gatewayServer.server, { host: config.server.listen.host, port: options.port ?? config.server.listen.port, reusePort: options.worker !== undefined }, logger, 'gateway')
    // A worker's admin listener is a socket only its primary reaches: the primary speaks for the gateway.
    adminAddress = options.worker ? null : await listen(adminServer, { host: config.admin.listen.host, port: options.adminPort ?? config.admin.listen.port }, logger, 'admin')
    if (options.worker) await listen(adminServer, { path: options.worker.adminSocket }, logger, 'admin')
  } catch (err) {
    // What started before stops again (the gateway's listener, the audit worker, pools, timers): a
    // probe found a gateway whose admin port was taken serving on, with SO_REUSEPORT sharing another's port.
    await createShutdown(live, { gatewayServer, adminServer, refresh: { stop() {} }, closeRegistries, quiesceMcpSessions, audit, tracing })()
    throw err
  }
  const refresh = startSecretsRefresh(live, background, leads)
  // Instances sharing a Redis limits store are told when their limits differ (limits/agreement.ts): from now, after each reload, and periodically.
  limitsAgreement = leads ? watchLimitsAgreement({ instance, current: () => ({ store: state.runtime.limiter.store, limits: state.runtime.config.limits }), logger }) : null
  void limitsAgreement?.check()
  const reloader = createReload(live, { ...prepareDeps, configFile: options.configFile, gatewayServer, refresh, reloaded: () => void limitsAgreement?.check() })
  const reload = reloader.reload
  /** This gateway's reload, or, in a worker, every worker's. */
  const reloadHere = (): Promise<ReloadResult> => (options.reloadEverywhere ?? reload)()
  function reloadWanted(): void {
    void background.run('reload', reloadHere)
  }
  const configWatch = leads ? watchConfigFile(options.configFile, state, () => reloadWanted()) : { stop() {} }
  const shutdown = createShutdown(live, { gatewayServer, adminServer, refresh, closeRegistries, quiesceMcpSessions, audit, tracing })

  return {
    url: listenUrl(gatewayAddress.address, gatewayAddress.port, gatewayServer.secure ? 'https' : 'http'),
    adminUrl: adminAddress ? listenUrl(adminAddress.address, adminAddress.port) : `unix:${options.worker?.adminSocket}`,
    state,
    logger,
    background,
    reload,
    stageReload: reloader.stage,
    shutdown: async () => {
      configWatch.stop()
      // Before the stores close: the other instances stop comparing with a gateway that is going.
      await limitsAgreement?.stop()
      await shutdown()
      if (!options.worker) releaseAuditSpills(config.audit)
    },
  }
}

/** How long a replacement worker waits for its issuers' first key loads before it listens anyway. */
const REPLACEMENT_KEYS_WAIT_MS = 5_000

/** Every issuer's first key load tried, or `ms` gone (an identity provider that is down answers 503 either way). */
async function keysTried(runtime: Runtime, ms: number): Promise<void> {
  const attempts = [...runtime.issuerKeys.values()].map((keys) => keys.firstAttempt ?? Promise.resolve())
  await withinDeadline(Promise.all(attempts), ms, 'the issuers\' first key loads', () => {}).catch(() => {})
}
