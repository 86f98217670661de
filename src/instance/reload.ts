// A reload: load the file again, prepare it beside the running config, swap it in with one
// assignment, and retire what only the old config used. A config that does not load or prepare is
// refused and the running one keeps serving.
import { createHash } from 'node:crypto'
import { setTimeout as sleep } from 'node:timers/promises'
import { formatDiagnostic, formatPath, loadConfigFile, loadConfigText, readTlsMaterial, restartOnlyChanges, startSettingsOf, type Config, type LoadedConfig, type TlsMaterial } from '../config/index.ts'
import type { ReloadResult } from '../admin/index.ts'
import { applySecretValues, putInForce, type GatewayServer, type Runtime } from '../gateway/index.ts'
import { retireSigner, type Live } from './live.ts'
import { ConfigError, diagnosticLines, prepare, type PrepareDeps } from './prepare.ts'
import type { SecretsRefresh } from './secrets-refresh.ts'

export type { ReloadResult } from '../admin/index.ts'

export interface ReloadDeps extends PrepareDeps {
  configFile: string
  gatewayServer: GatewayServer
  refresh: SecretsRefresh
  /** Told once a reload is in force (the limits compared with the other instances' again). */
  reloaded?: () => void
}

/**
 * A reload read and prepared beside the running config, not yet in force: `commit` swaps it in,
 * `abort` closes what it opened. server.workers stages a reload (the text its primary read) on
 * every worker and commits it only once all of them have prepared it, so that what one worker
 * cannot prepare (a key being rewritten) is refused by all of them, not in force on some. Other
 * reloads wait until it ends.
 */
export type StagedReload =
  | { ok: false; result: ReloadResult }
  /** `tlsFiles`: what of the TLS files it installs (tlsFilesDigest; null without TLS), which server.workers compares across workers. */
  | { ok: true; tlsFiles: string | null; commit(): ReloadResult; abort(): void }

export interface Reloader {
  /** Loads, prepares and swaps in the file as it is now (requests made while one runs share the next). */
  reload(): Promise<ReloadResult>
  /**
   * Loads and prepares it (or `text`, the file as server.workers' primary read it once for every
   * worker); the caller commits or aborts (else it is aborted after STAGED_LIMIT_MS).
   */
  stage(text?: string, ticketKeys?: Buffer, generation?: number): Promise<StagedReload>
}

/** How long a staged reload waits for its commit before it is aborted (a coordinator that went away). */
const STAGED_LIMIT_MS = 60_000

/** How long a reload waits for a changed function's module to load: Lambda's limit on a function's init phase. */
const MODULE_LOAD_WAIT_MS = 10_000

/**
 * What a reload installs of the TLS files, as one digest: the certificate, client_ca, and
 * client_crl's CRLs as the handshake takes them and as the gateway's own checks of them read them
 * (runtime.certificateRevocations). server.workers' workers each read the files while they prepare a
 * reload: a certificate or a CRL written between two of them left them on two (a CRL for ~1.2 s, until
 * the file's own change reloaded them again), so they must agree on this. The key is not in it: a
 * digest of it would be a fact about the key in a log line, and a key changes with its certificate.
 */
export function tlsFilesDigest(material: TlsMaterial, runtime: Runtime): string {
  const hash = createHash('sha256').update(material.leaf.fingerprint256).update('\0').update(material.clientCa ?? '')
  for (const pem of material.clientCrl ?? []) hash.update('\0').update(pem)
  return hash.update('\0').update(runtime.certificateRevocations).digest('hex')
}

export function createReload(live: Live, deps: ReloadDeps): Reloader {
  const { logger, background, compile } = deps
  const { state } = live
  // The reload under way, staged ones until their commit or abort: the next waits for it.
  let turn: Promise<void> = Promise.resolve()
  let queued: Promise<ReloadResult> | null = null
  const { replaced } = live
  /** What this process started with: a reload that changes it says so until the restart. */
  const started = startSettingsOf(state.runtime.config)
  /** Runtimes prepared but not yet swapped in or aborted: what they acquired is not retired meanwhile. */
  const preparing = new Set<Runtime>()
  let polling = false

  // Reloads holding the turn or waiting for it.
  let waiting = 0
  function takeTurn(): Promise<() => void> {
    const previous = turn
    let release!: () => void
    waiting++
    turn = new Promise<void>((resolve) => (release = resolve))
    const done = () => {
      waiting--
      release()
    }
    return previous.then(() => done)
  }

  /** `generation`: what server.workers' primary numbers it; else the one after the running config's. */
  async function prepareNext(text?: string, ticketKeys?: Buffer, generation = state.runtime.generation + 1): Promise<StagedReload> {
    if (state.draining) return { ok: false, result: shuttingDown() }
    const next = text === undefined ? await loadConfigFile(deps.configFile, deps.env) : loadConfigText(text, deps.configFile, deps.env)
    if (!next.config) {
      const errors = diagnosticLines(next, 'error')
      refused(errors)
      return { ok: false, result: { ok: false, errors } }
    }
    // The certificate files as read now are what the commit installs: read again at commit, a file
    // replaced in between left workers on two certificates, or answered ok with none installed (a probe).
    // The compile checks certificates with the same read's CRLs: read again, the handshake and the
    // forwarded-certificate checks could each hold a different client_crl.
    const tls = next.config.server.tls && deps.gatewayServer.secure ? readTlsMaterial(next.config.server.tls) : null
    if (tls && !tls.ok) {
      const errors = tls.errors.map((e) => `${formatPath(e.path)}: ${e.message}`)
      refused(errors)
      return { ok: false, result: { ok: false, errors } }
    }
    let prepared: Awaited<ReturnType<typeof prepare>>
    // Counted as in use from its compile on: a retirement pass of an earlier reload that ran while
    // this one waited (for a signing key under another process's lock) closed the pools, stores
    // and function threads it had just acquired, and the reload swapped them in closed.
    let compiled: Runtime | undefined
    const inUse = (runtime: Runtime) => {
      compiled = runtime
      preparing.add(runtime)
    }
    try {
      prepared = await prepare({ ...next, config: next.config }, deps, generation, tls?.material, inUse)
    } catch (err) {
      if (compiled) preparing.delete(compiled)
      // What the config acquired before it failed, whatever failed: a store that could not take a new
      // key (not a config error) left a new function's worker threads, pools and clients running.
      retireInBackground()
      if (!(err instanceof ConfigError)) throw err
      refused(err.lines)
      return { ok: false, result: { ok: false, errors: err.lines } }
    }
    const config = next.config
    const { runtime } = prepared
    // A new Redis limits store connects before its runtime serves: swapped in while connecting,
    // every limited request met on_error (503, or no limit with allow) until it was ready (probe).
    const [unloadable] = await Promise.all([unloadableModules({ ...next, config: next.config }, runtime), runtime.limiter.store.settled?.()])
    /** What the prepared config opened closes (the running config's resources stay). */
    const abort = () => {
      preparing.delete(runtime)
      if (prepared.secrets !== live.secrets) void prepared.secrets.close()
      runtime.mcp?.detach()
      retireInBackground()
    }
    if (unloadable.length > 0) {
      abort()
      refused(unloadable)
      return { ok: false, result: { ok: false, errors: unloadable } }
    }
    const commit = (): ReloadResult => {
      preparing.delete(runtime)
      if (state.draining) {
        // A shutdown began while this config was being prepared: it is not swapped in.
        abort()
        return shuttingDown()
      }
      const previous = state.runtime
      const atRestart = restartOnlyChanges(started, config)
      for (const line of atRestart) logger.warn(line)
      // Its values into what it shares with the running config too, at the swap (prepare left
      // those as they were): a refresh of the running store meanwhile wrote that store's in.
      applySecretValues(runtime, prepared.secrets.resolve)
      putInForce(compile, runtime)
      state.runtime = runtime // the swap: new requests see the new runtime from here on
      state.reloadRefused = null
      // Keys kept from the running config are fetched again now: a reload is how an operator has a
      // key the provider withdrew (a compromised one) stop being honoured, cached tokens included.
      for (const keys of runtime.issuerKeys.values()) keys.refresh?.()
      // Open WebSocket tunnels the new config would refuse (the route gone, the caller's access taken away) close.
      state.openTunnels.redecide(runtime)
      // MCP sessions of a path the new config dropped: no new stream, their calls in flight answered,
      // ended with the runtimes that served them (retireUnused).
      compile.agents.retireSessions(runtime.mcp?.config.path ?? null)
      replaced.set(previous, performance.now() + previous.config.server.shutdown_timeout)
      void background.run('runtime_retirement', retireWhenIdle)
      live.admin = prepared.admin
      if (prepared.secrets !== live.secrets) {
        void live.secrets.close()
        live.secrets = prepared.secrets
      }
      deps.gatewayServer.reconfigure(config.server, tls?.material ?? null, ticketKeys) // timeouts, the connection bound, the TLS files
      deps.refresh.follow(previous.config, config)
      // Logged as a start logs them: a reload set off by SIGHUP or a changed file has no caller to
      // show them to (an expired certificate renewed on disk was installed without a word).
      const configWarnings = diagnosticLines(next, 'warning')
      for (const line of configWarnings) logger.warn(line)
      const warnings = [...configWarnings, ...atRestart]
      logger.info({ generation: runtime.generation, warnings: warnings.length }, 'config reloaded')
      deps.reloaded?.()
      return { ok: true, generation: runtime.generation, warnings }
    }
    return { ok: true, tlsFiles: tls ? tlsFilesDigest(tls.material, runtime) : null, commit, abort }
  }

  /**
   * A function whose module changed gets a new pool: the reload waits for its first worker to load
   * the module, and is refused if it cannot (a syntax error, a missing export), as one naming a
   * missing file is. Swapped in, it answered 502 for every call where the old version had served
   * (probe finding). A module still loading after MODULE_LOAD_WAIT_MS is let through.
   */
  async function unloadableModules(next: LoadedConfig & { config: Config }, runtime: Runtime): Promise<string[]> {
    const running = new Set(state.runtime.functions.values())
    const problems = await Promise.all(next.config.functions.map(async (fn, i) => {
      const pool = runtime.functions.get(fn.name)
      if (pool === undefined || running.has(pool)) return null // unchanged: its workers serve already
      const error = await Promise.race([pool.loaded, sleep(MODULE_LOAD_WAIT_MS, null, { ref: false })])
      if (error === null) return null
      const message = `its module could not be loaded: ${error.name}: ${error.message}`
      return formatDiagnostic(next.file, next.locate({ severity: 'error', path: ['functions', i, 'module'], message }))
    }))
    return problems.filter((line) => line !== null)
  }

  /** Logged, and kept for /readyz until a reload succeeds: several instances on one file may disagree only here. */
  function refused(errors: string[]): void {
    logger.error({ errors }, 'config reload refused: the running config keeps serving')
    state.reloadRefused = { at: new Date().toISOString(), problems: errors.length }
  }

  function shuttingDown(): ReloadResult {
    logger.warn('config reload refused: the gateway is shutting down')
    return { ok: false, errors: ['the gateway is shutting down: the config is not reloaded'] }
  }

  /**
   * Closes what no config and no running request uses any more: old pools, issuers' key sets, limits
   * stores, API key stores, sign-in session stores, functions' workers, datasets' pools, upstream MCP
   * servers' connections and approvals stores. What the current runtime uses is
   * kept, and so is what any replaced runtime uses while requests that started on it are running
   * (a request keeps the runtime it started with, however many reloads come after it: a pool closed
   * under one answered it 502), each for at most `shutdown_timeout` after its replacement, as a
   * shutdown waits. So one long request (a WebSocket, a stream) holds its own runtime's resources,
   * never every later reload's. Also closes what a refused reload acquired before it was refused.
   */
  function retireUnused(): Promise<unknown> {
    const now = Date.now()
    const mono = performance.now()
    for (const [runtime, until] of replaced) {
      if (runtime.usage.inFlight > 0 && mono < until) continue
      replaced.delete(runtime)
      runtime.mcp?.detach()
      retireSigner(live, runtime.signing.assertions, now + runtime.config.assertion.ttl, now)
    }
    const kept = [state.runtime, ...replaced.keys(), ...preparing]
    const drainingPaths = new Set([...replaced.keys()].flatMap((runtime) => (runtime.mcp ? [runtime.mcp.config.path] : [])))
    return Promise.all([
      compile.agents.endRetiredSessions(drainingPaths),
      compile.issuers.retire(kept.flatMap((runtime) => [...runtime.issuerKeys.values()])),
      compile.introspectors.retire(kept.flatMap((runtime) => (runtime.introspection ? [runtime.introspection] : []))),
      compile.limitsStores.retire(kept.map((runtime) => runtime.limiter.store)),
      compile.upstreams.retire(kept.flatMap((runtime) => [...runtime.upstreams.values()])),
      compile.apiKeys.retire(kept.flatMap((runtime) => (runtime.apiKeys ? [runtime.apiKeys] : []))),
      compile.sessionStores.retire(kept.flatMap((runtime) => [runtime.signIn, runtime.consoleSignIn].flatMap((signIn) => (signIn ? [signIn.store] : [])))),
      compile.functions.retire(kept.flatMap((runtime) => [...runtime.functions.values()])),
      compile.datasources.retire(kept.flatMap((runtime) => [...runtime.datasources.values()])),
      compile.agents.retire(kept.flatMap((runtime) => (runtime.mcp ? [runtime.mcp] : []))),
    ])
  }

  /** A retirement pass, its closes left to finish in the background (each registry forgets what it closes at once). */
  function retireInBackground(): void {
    void background.run('runtime_retirement', retireUnused)
  }

  /**
   * After a swap: retire at once what nothing needs, then every 50 ms while replaced runtimes drain
   * (one loop however many reloads). The loop does not wait for a pass's closes: an upstream pool's
   * close waits for the streams still on it (one held past shutdown_timeout, an SSE stream), and
   * the loop waiting on it retired no later reload's replaced runtime (found by a helper's review).
   */
  async function retireWhenIdle(): Promise<void> {
    retireInBackground()
    if (polling) return
    polling = true
    try {
      while (replaced.size > 0) {
        await sleep(50)
        retireInBackground()
      }
    } finally {
      polling = false
    }
  }

  function reload(): Promise<ReloadResult> {
    // Requests made while one runs share the next load: the one under way may have read the file
    // before their edit. With none under way, this one reads it now.
    if (queued) return queued
    const idle = waiting === 0
    const next = takeTurn().then(async (release) => {
      if (queued === next) queued = null
      try {
        const staged = await prepareNext()
        return staged.ok ? staged.commit() : staged.result
      } finally {
        release()
      }
    })
    if (!idle) queued = next
    return next
  }

  async function stage(text?: string, ticketKeys?: Buffer, generation?: number): Promise<StagedReload> {
    const release = await takeTurn()
    let staged: StagedReload
    try {
      staged = await prepareNext(text, ticketKeys, generation)
    } catch (err) {
      release()
      throw err
    }
    if (!staged.ok) {
      release()
      return staged
    }
    const { commit, abort, tlsFiles } = staged
    logger.debug({ tls_files: tlsFiles }, 'reload staged')
    let ended = false
    /** A commit or abort after the limit aborted it (a primary slower than the limit) does nothing: no throw in a message handler. */
    const end = <T>(work: () => T, afterwards: T): T => {
      if (ended) return afterwards
      ended = true
      clearTimeout(limit)
      try {
        return work()
      } finally {
        release()
      }
    }
    const limit = setTimeout(() => {
      logger.warn('a staged reload was neither committed nor aborted in time: aborted')
      end(abort, undefined)
    }, STAGED_LIMIT_MS)
    limit.unref()
    const lapsed: ReloadResult = { ok: false, errors: ['the staged reload waited longer than its limit for its commit and was aborted'] }
    return { ok: true, tlsFiles, commit: () => end(commit, lapsed), abort: () => end(abort, undefined) }
  }

  return { reload, stage }
}
