// A running gateway: config loaded and compiled, gateway and admin listeners bound, reload and
// graceful shutdown. `bouncer serve`, the demo and the integration tests all start gateways here.
import { once } from 'node:events'
import type { AddressInfo, Server as NetServer } from 'node:net'
import { adminRoutes, createAdminServer } from '../admin/index.ts'
import { createAuditLog, instanceIdOf } from '../audit/index.ts'
import { listenUrl, loadConfigFile } from '../config/index.ts'
import { createGatewayServer, createRuntimeDeps, type GatewayState } from '../gateway/index.ts'
import { createBackgroundTasks, createLogger, createMetrics, startTracing, type BackgroundTasks, type Logger } from '../telemetry/index.ts'
import type { Live } from './live.ts'
import { ConfigError, diagnosticLines, prepare, type PrepareDeps } from './prepare.ts'
import { watchConfigFile } from './config-watch.ts'
import { createReadiness } from './readiness.ts'
import { createReload, type ReloadResult } from './reload.ts'
import { startSecretsRefresh } from './secrets-refresh.ts'
import { createShutdown } from './shutdown.ts'

export interface StartOptions {
  configFile: string
  /** Override the listen ports (0 picks a free one). */
  port?: number
  adminPort?: number
  logger?: Logger
  env?: NodeJS.ProcessEnv
}

export interface GatewayInstance {
  readonly url: string
  readonly adminUrl: string
  readonly state: GatewayState
  readonly logger: Logger
  /** Runs and reports the gateway's own work (SIGHUP reloads, timers): a failure never ends the process. */
  readonly background: BackgroundTasks
  reload(): Promise<ReloadResult>
  /** Stops accepting, lets in-flight requests finish (bounded by server.shutdown_timeout), closes everything. */
  shutdown(): Promise<void>
}

export async function startGateway(options: StartOptions): Promise<GatewayInstance> {
  const env = options.env ?? process.env
  const loaded = await loadConfigFile(options.configFile, env)
  if (!loaded.config) throw new ConfigError(diagnosticLines(loaded, 'error'))
  const config = loaded.config
  // Every log line and metric names the instance, as its audit records do (several behind one balancer).
  const instance = instanceIdOf(config.audit.instance_id, env)
  const logger = (options.logger ?? createLogger({ level: config.telemetry.log_level })).child({ instance })
  for (const line of diagnosticLines(loaded, 'warning')) logger.warn(line)

  const metrics = createMetrics({ audit: () => audit.stats(), inFlight: () => state.inFlight, upstreams: () => state.runtime.upstreams.values(), instance })
  const background = createBackgroundTasks(logger, metrics)
  const tracing = await startTracing(config.telemetry)
  const compile = createRuntimeDeps(logger, {
    background,
    keySetEvents: { refreshed: (issuer) => metrics.keySetEvent(issuer, true), failed: (issuer) => metrics.keySetEvent(issuer, false) },
    // The gateway's JWKS endpoint publishes the keys of the signer in force (it changes on reload).
    builtIns: { publishedKeys: () => state.assertions?.jwks() ?? { keys: [] } },
  })
  const prepareDeps: PrepareDeps = { logger, background, env, compile }

  const first = prepare({ ...loaded, config }, null, prepareDeps)
  const audit = createAuditLog(config.audit, logger, background, first.secrets.store) // its checkpoint key may live in the store
  const state: GatewayState = {
    runtime: first.runtime,
    logger,
    audit,
    metrics,
    tracing,
    assertions: first.assertions,
    draining: false,
    inFlight: 0,
    tunnels: new Set(),
  }
  const live: Live = { state, secrets: first.secrets, admin: first.admin }

  const gatewayServer = createGatewayServer(state, {
    onClientError: (rejected) => audit.recordRejected(rejected),
    // A renewed certificate is read by a reload, as on SIGHUP: one path checks and applies it.
    onTlsFilesChanged: () => void background.run('reload', () => reload()),
  })
  const adminServer = createAdminServer({
    logger,
    auth: () => live.admin,
    routes: adminRoutes({ runtime: () => state.runtime, reload: () => reload(), secretsStore: () => live.secrets.store, auditHead: () => audit.head() }),
    metrics: () => metrics.render(),
    readiness: createReadiness(state),
  })

  const gatewayAddress = await listen(gatewayServer.server, config.server.listen.host, options.port ?? config.server.listen.port)
  const adminAddress = await listen(adminServer, config.admin.listen.host, options.adminPort ?? config.admin.listen.port)
  const refresh = startSecretsRefresh(live, background)
  const reload = createReload(live, { ...prepareDeps, configFile: options.configFile, gatewayServer, refresh })
  const configWatch = watchConfigFile(options.configFile, state, () => void background.run('reload', () => reload()))
  const shutdown = createShutdown(live, { gatewayServer, adminServer, refresh, closeRegistries: () => compile.closeAll(), audit, tracing })

  return {
    url: listenUrl(gatewayAddress.address, gatewayAddress.port, gatewayServer.secure ? 'https' : 'http'),
    adminUrl: listenUrl(adminAddress.address, adminAddress.port),
    state,
    logger,
    background,
    reload,
    shutdown: () => {
      configWatch.stop()
      return shutdown()
    },
  }
}

async function listen(server: NetServer, host: string, port: number): Promise<AddressInfo> {
  server.listen(port, host)
  await Promise.race([once(server, 'listening'), once(server, 'error').then(([err]) => Promise.reject(err))])
  return server.address() as AddressInfo
}
