// A running gateway: config loaded and compiled, gateway and admin listeners bound, reload and
// graceful shutdown. `bouncer serve` and the integration tests both start gateways through here.
import { once } from 'node:events'
import type { Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import { setTimeout as sleep } from 'node:timers/promises'
import { adminAuth, type AdminAuth } from '../admin/auth.ts'
import { adminRoutes } from '../admin/api.ts'
import { createAdminServer, type Readiness } from '../admin/server.ts'
import { formatDiagnostic, listenUrl, loadConfigFile, type Config, type LoadedConfig } from '../config/index.ts'
import { createAuditLog } from '../audit/log.ts'
import { openSecretsRuntime, SecretsUnavailable, type SecretsRuntime } from '../secrets/runtime.ts'
import { createAssertionSigner, type AssertionSigner } from '../upstream/assertion.ts'
import { createBackgroundTasks, type BackgroundTasks } from '../telemetry/background.ts'
import { createLogger, type Logger } from '../telemetry/logger.ts'
import { createMetrics } from '../telemetry/metrics.ts'
import { startTracing } from '../telemetry/tracing.ts'
import { applyUpstreamHeaders, compileRuntime, createRuntimeDeps, type Runtime } from './compile.ts'
import { applyTimeouts, createGatewayServer } from './server.ts'
import type { GatewayState } from './state.ts'

export interface StartOptions {
  configFile: string
  /** Override the listen ports (0 picks a free one). */
  port?: number
  adminPort?: number
  logger?: Logger
  env?: NodeJS.ProcessEnv
}

export type ReloadResult =
  | { ok: true; generation: number; warnings: string[] }
  | { ok: false; errors: string[] }

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

/** A config that does not validate: the lines to print, in `bouncer check` format. */
export class ConfigError extends Error {
  readonly lines: string[]
  constructor(lines: string[]) {
    super(`the config is not valid:\n${lines.join('\n')}`)
    this.name = 'ConfigError'
    this.lines = lines
  }
}

function diagnosticLines(loaded: LoadedConfig, severity: 'error' | 'warning'): string[] {
  return loaded.diagnostics.filter((d) => d.severity === severity).map((d) => formatDiagnostic(loaded.file, d))
}

export async function startGateway(options: StartOptions): Promise<GatewayInstance> {
  const env = options.env ?? process.env
  const loaded = await loadConfigFile(options.configFile, env)
  if (!loaded.config) throw new ConfigError(diagnosticLines(loaded, 'error'))
  const config = loaded.config
  const logger = options.logger ?? createLogger({ level: config.telemetry.log_level })
  for (const line of diagnosticLines(loaded, 'warning')) logger.warn(line)

  const metrics = createMetrics({ audit: () => audit.stats(), inFlight: () => state.inFlight })
  const background = createBackgroundTasks(logger, metrics)
  const audit = createAuditLog(config.audit, logger, background)
  const tracing = await startTracing(config.telemetry)
  const deps = createRuntimeDeps(logger, {
    background,
    keySetEvents: { refreshed: (issuer) => metrics.keySetEvent(issuer, true), failed: (issuer) => metrics.keySetEvent(issuer, false) },
  })
  const { upstreams, issuers, limitsStores } = deps

  /** Secrets, compile, secret values into headers and the admin token: one config, ready to swap in. */
  function prepare(next: LoadedConfig & { config: Config }, assertions: AssertionSigner | null) {
    let secrets: SecretsRuntime
    try {
      secrets = openSecretsRuntime(next, { logger, background, env, format: (d) => formatDiagnostic(next.file, d) })
    } catch (err) {
      if (err instanceof SecretsUnavailable) throw new ConfigError(err.lines)
      throw err
    }
    try {
      const runtime = compileRuntime(next.config, deps)
      applyUpstreamHeaders(runtime.upstreams, secrets.resolve)
      const wantsAssertions = next.config.upstreams.some((u) => u.identity_assertion)
      // A signer on a writable store is rebuilt on the new store handle (its key lives there, same kid);
      // one with an in-memory key is kept, or assertions already out would lose their key.
      const keep = assertions !== null && !secrets.store?.writable
      const signer = !wantsAssertions
        ? null
        : keep
          ? assertions
          : createAssertionSigner({ issuer: next.config.assertion.issuer, ttlMs: next.config.assertion.ttl, rotateEveryMs: next.config.assertion.rotate_every, store: secrets.store, logger })
      return { runtime, secrets, admin: adminFor(next.config, secrets), assertions: signer }
    } catch (err) {
      secrets.close() // the store handle this attempt opened; the running config keeps its own
      throw err
    }
  }

  const first = prepare({ ...loaded, config }, null)
  let secrets = first.secrets
  let admin: AdminAuth = first.admin

  const state: GatewayState = {
    runtime: first.runtime,
    logger,
    audit,
    tracing,
    assertions: first.assertions,
    draining: false,
    inFlight: 0,
    tunnels: new Set(),
    onRequestDone(ctx) {
      if (!ctx.audited) audit.record(ctx)
      metrics.observeRequest(ctx, (performance.now() - ctx.startMono) / 1000)
    },
  }

  const gatewayServer = createGatewayServer(state, (rejected) => audit.recordRejected(rejected))
  const adminServer = createAdminServer({
    logger,
    auth: () => admin,
    routes: adminRoutes(state, () => reload(), () => secrets.store),
    metrics: () => metrics.render(),
    readiness: () => readiness(state),
  })

  const gatewayAddress = await listen(gatewayServer, config.server.listen.host, options.port ?? config.server.listen.port)
  const adminAddress = await listen(adminServer, config.admin.listen.host, options.adminPort ?? config.admin.listen.port)

  let reloading: Promise<ReloadResult> | null = null
  function reload(): Promise<ReloadResult> {
    // Reloads triggered together (SIGHUP and the API) share one load.
    reloading ??= doReload().finally(() => {
      reloading = null
    })
    return reloading
  }

  async function doReload(): Promise<ReloadResult> {
    const next = await loadConfigFile(options.configFile, env)
    if (!next.config) {
      const errors = diagnosticLines(next, 'error')
      logger.error({ errors }, 'config reload refused: the running config keeps serving')
      return { ok: false, errors }
    }
    const previous = state.runtime
    let prepared: ReturnType<typeof prepare>
    try {
      prepared = prepare({ ...next, config: next.config }, state.assertions)
    } catch (err) {
      if (!(err instanceof ConfigError)) throw err
      logger.error({ errors: err.lines }, 'config reload refused: the running config keeps serving')
      return { ok: false, errors: err.lines }
    }
    const { runtime } = prepared
    if (next.config.server.listen.text !== previous.config.server.listen.text || next.config.admin.listen.text !== previous.config.admin.listen.text) {
      logger.warn('a changed listen address takes effect at the next restart')
    }
    if (JSON.stringify(next.config.audit) !== JSON.stringify(previous.config.audit)) {
      logger.warn('a changed audit section takes effect at the next restart')
    }
    state.runtime = runtime // the swap: new requests see the new runtime from here on
    state.assertions = prepared.assertions
    admin = prepared.admin
    if (prepared.secrets !== secrets) {
      secrets.close()
      secrets = prepared.secrets
    }
    issuers.retire(runtime.issuerKeys)
    limitsStores.retire(runtime.limiter.store)
    applyTimeouts(gatewayServer, next.config.server)
    followRefreshInterval(previous.config, next.config)
    void background.run('runtime_retirement', () => retireWhenIdle(previous, runtime))
    const warnings = diagnosticLines(next, 'warning')
    logger.info({ generation: runtime.generation, warnings: warnings.length }, 'config reloaded')
    return { ok: true, generation: runtime.generation, warnings }
  }

  /** Old pools close once no request that started on the old runtime still needs them. */
  async function retireWhenIdle(previous: Runtime, current: Runtime): Promise<void> {
    const deadline = Date.now() + previous.config.server.shutdown_timeout
    while (previous.usage.inFlight > 0 && Date.now() < deadline) await sleep(50)
    if (state.runtime === current) await upstreams.retire(current.upstreams)
  }

  /** New secret values into the upstreams' headers and the admin token. */
  function applySecrets(): void {
    applyUpstreamHeaders(state.runtime.upstreams, secrets.resolve)
    admin = adminFor(state.runtime.config, secrets)
  }
  // Every refresh interval of the config in force (a reload that changes it restarts the timer):
  // new secret versions (a rotation elsewhere, a changed file), due scheduled rotations, and the
  // assertion key. Three tasks, each counted on its own: one that fails does not skip the others.
  function refreshSecrets(): void {
    void background.run('secrets_refresh', () => secrets.reread() && applySecrets())
    void background.run('secret_rotation', async () => (await secrets.rotateDue()) && applySecrets())
    void background.run('assertion_key_rotation', () => state.assertions?.rotateIfDue())
  }
  const refreshEvery = (c: Config) => c.secrets?.refresh_interval ?? 2_000
  let refresher = setInterval(refreshSecrets, refreshEvery(config)).unref()
  function followRefreshInterval(previous: Config, next: Config): void {
    if (refreshEvery(previous) === refreshEvery(next)) return
    clearInterval(refresher)
    refresher = setInterval(refreshSecrets, refreshEvery(next)).unref()
  }

  async function shutdown(): Promise<void> {
    if (state.draining) return
    state.draining = true
    clearInterval(refresher)
    gatewayServer.close()
    gatewayServer.closeIdleConnections()
    const deadline = Date.now() + state.runtime.config.server.shutdown_timeout
    while (state.inFlight > 0 && Date.now() < deadline) await sleep(20)
    if (state.inFlight > 0) logger.warn({ in_flight: state.inFlight }, 'shutdown timeout: closing connections with requests in flight')
    gatewayServer.closeAllConnections()
    for (const socket of state.tunnels) socket.destroy()
    adminServer.close()
    adminServer.closeAllConnections()
    await deps.closeAll()
    await audit.close() // last: every request's record is queued by now
    await tracing?.shutdown()
    secrets.close()
  }

  return {
    url: listenUrl(gatewayAddress.address, gatewayAddress.port),
    adminUrl: listenUrl(adminAddress.address, adminAddress.port),
    state,
    logger,
    background,
    reload,
    shutdown,
  }
}

/** Admin API auth for a config: its admin.token, `${secret:}` references resolved. */
function adminFor(config: Config, secrets: SecretsRuntime): AdminAuth {
  const token = config.admin.token
  return adminAuth(token === undefined ? undefined : secrets.resolve(token))
}

/**
 * Ready once the config is loaded and every issuer's first key load has been tried: an identity
 * provider that is down does not hold the whole gateway out of rotation (its tokens get 503
 * identity_provider_unavailable while its keys are retried), but it shows in the checks.
 */
function readiness(state: GatewayState): Readiness {
  const checks: Record<string, string> = { config: `generation ${state.runtime.generation}` }
  let ready = !state.draining
  if (state.draining) checks.draining = 'true'
  checks.limits_store = state.runtime.limiter.store.status()
  for (const [sink, up] of Object.entries(state.audit.stats().sinks)) checks[`audit:${sink}`] = up ? 'writing' : 'spilling to disk'
  for (const keys of state.runtime.issuerKeys.values()) {
    if (!keys.attempted) ready = false
    checks[`issuer:${keys.name}`] = keys.state === 'ready' ? 'keys loaded' : keys.attempted ? `unavailable: ${keys.lastError}` : 'loading'
  }
  return { ready, checks }
}

async function listen(server: Server, host: string, port: number): Promise<AddressInfo> {
  server.listen(port, host)
  await Promise.race([once(server, 'listening'), once(server, 'error').then(([err]) => Promise.reject(err))])
  return server.address() as AddressInfo
}
