// One loaded config made ready to serve: its secrets store opened and read, the runtime compiled,
// the secret values put into the upstreams' headers, the admin credential and the assertion signer.
// The first start and every reload go through here, so they cannot prepare a config differently.
import { adminAuth, type AdminAuth } from '../admin/index.ts'
import { adoptAuditSpills, SpillDirInUse } from '../audit/index.ts'
import { createExchangeKeys, EXCHANGE_KEY, OWN_TOKEN_CLOCK_TOLERANCE_MS, type ExchangeKeys } from '../agents/index.ts'
import { adminTokenProblems, formatDiagnostic, signingSecretName, type AuditConfig, type Config, type LoadedConfig, type TlsMaterial } from '../config/index.ts'
import { applySecretValues, compileRuntime, heldResources, loadModulesFor, type CompileDeps, type Runtime } from '../gateway/index.ts'
import { ApiKeyStoreError, SessionStoreError } from '../identity/index.ts'
import { keepSigningKey, openSecretsRuntime, SecretsError, SecretStoreWriteFailed, SecretsUnavailable, SigningKeyError, type SecretsRuntime, type SecretStore } from '../secrets/index.ts'
import type { BackgroundTasks, Logger } from '../telemetry/index.ts'
import { ASSERTION_KEY, createAssertionSigner, type AssertionSigner } from '../upstream/index.ts'

/** A config that does not validate: the lines to print, in `bouncer check` format. */
export class ConfigError extends Error {
  readonly lines: string[]
  constructor(lines: string[]) {
    super(`the config is not valid:\n${lines.join('\n')}`)
    this.name = 'ConfigError'
    this.lines = lines
  }
}

/** The spill directory claimed for this gateway (adoptAuditSpills); another live gateway's refuses the start, before anything else opens. */
export function claimAuditSpills(audit: AuditConfig, workers: number | null, logger: Logger): void {
  try {
    adoptAuditSpills(audit, workers, logger)
  } catch (err) {
    if (err instanceof SpillDirInUse) throw new ConfigError([`audit.spill_dir: ${err.message}`])
    throw err
  }
}

export function diagnosticLines(loaded: LoadedConfig, severity: 'error' | 'warning'): string[] {
  return loaded.diagnostics.filter((d) => d.severity === severity).map((d) => formatDiagnostic(loaded.file, d))
}

export interface Prepared {
  runtime: Runtime
  secrets: SecretsRuntime
  admin: AdminAuth
}

export interface PrepareDeps {
  logger: Logger
  background: BackgroundTasks
  env: NodeJS.ProcessEnv
  compile: CompileDeps
  /** Where the keys the gateway makes are kept when no configured store keeps them: the process's, every worker's. */
  keys: SecretStore
  /** The running config's assertion signer, whose signing key a reload's new signer takes over (none at start). */
  runningSigner?: () => AssertionSigner | null
  /** The running config's token exchange keys, which a reload's keep published while their tokens live (none at start). */
  runningExchangeKeys?: () => ExchangeKeys | null
  /** The running config's secrets, whose scheduled rotations a reload's go on with (none at start). */
  runningSecrets?: () => SecretsRuntime | null
  /** The runtimes that serve now (the running one, those replaced still draining): what they share with a reload's is not written before its commit. */
  servingRuntimes?: () => Iterable<Runtime>
}

/**
 * Secrets, compile, secret values into headers and the admin token: one config, ready to swap in as
 * `generation` (Runtime.generation). `tls`: the server.tls files as read for the handshake, when they were.
 * `compiled`: told the runtime as soon as it is compiled, before the waits that follow (a signing
 * key made under another process's lock): a reload counts what it holds as in use from then on.
 */
export async function prepare(next: LoadedConfig & { config: Config }, deps: PrepareDeps, generation: number, tls?: TlsMaterial, compiled?: (runtime: Runtime) => void): Promise<Prepared> {
  const { logger } = deps
  await loadModulesFor(next.config) // before anything is opened: nothing to close if it fails
  let secrets: SecretsRuntime
  try {
    secrets = openSecretsRuntime(next, { logger, background: deps.background, env: deps.env, format: (d) => formatDiagnostic(next.file, d), rotations: deps.runningSecrets?.()?.rotations })
  } catch (err) {
    if (err instanceof SecretsUnavailable) throw new ConfigError(err.lines)
    throw err
  }
  let runtime: Runtime | null = null
  try {
    runtime = compileRuntime(next.config, deps.compile, generation, tls?.clientCrls)
    compiled?.(runtime)
    // Not into what the serving runtimes share with it: live requests sent this config's values
    // before it was swapped in (held in a signing key's lock, or for every server.workers worker to
    // prepare), and a refused reload's had to be put back. The commit applies them (reload.ts).
    applySecretValues(runtime, secrets.resolve, deps.servingRuntimes ? heldResources(deps.servingRuntimes()) : undefined)
    // The runtime's own signers: its requests sign with them however many reloads come after.
    runtime.signing.assertions = await signerFor(next.config, secrets, deps.keys, logger, deps.runningSigner?.() ?? null)
    runtime.signing.exchangeKeys = await exchangeKeysFor(next.config, secrets, deps.keys, logger, deps.runningExchangeKeys?.() ?? null)
    return { runtime, secrets, admin: adminFor(next.config, secrets, next) }
  } catch (err) {
    void secrets.close() // the store handle this attempt opened; the running config keeps its own
    runtime?.mcp?.detach()
    throw storeError(next, err) ?? err
  }
}

/**
 * A store the config names that cannot be opened (its file is not SQLite, or not that store's) is
 * the config's error, at its place in the file: thrown as it was, a reload answered 500
 * internal_error, logged only as a failed admin request, and serve said "internal error" (found by
 * an adversarial probe: api_keys.store.path naming a text file, which check cannot tell).
 */
function storeError(next: LoadedConfig, err: unknown): ConfigError | null {
  const path = err instanceof ApiKeyStoreError ? ['api_keys', 'store'] : err instanceof SessionStoreError ? ['sign_in', 'session', 'store'] : null
  if (path === null) return null
  return new ConfigError([formatDiagnostic(next.file, next.locate({ severity: 'error', path, message: (err as Error).message }))])
}

/**
 * Each config gets its own signer on the store that keeps its key: the configured one, or the
 * process's key store, so the key (same kid) outlives the reload, and is every worker's.
 */
async function signerFor(config: Config, secrets: SecretsRuntime, keys: SecretStore, logger: Logger, running: AssertionSigner | null): Promise<AssertionSigner | null> {
  if (!config.upstreams.some((u) => u.identity_assertion)) return null
  try {
    await keepSigningKey(secrets.store, ASSERTION_KEY, true, logger)
    return createAssertionSigner({ issuer: config.assertion.issuer, ttlMs: config.assertion.ttl, rotateEveryMs: config.assertion.rotate_every, refreshIntervalMs: config.secrets?.refresh_interval, store: secrets.store, fallback: keys, logger, handover: running?.handover() ?? null })
  } catch (err) {
    // An unreadable key (an empty file caught mid-rewrite): the reload is refused, the running config
    // keeps signing. A store that could not take a new key is no fault of the config: a failed reload.
    if (err instanceof SecretsError && !(err instanceof SecretStoreWriteFailed)) throw new ConfigError([`${ASSERTION_KEY}: ${err.message}`])
    throw err
  }
}

/**
 * The token exchange's signing keys, read from the store the config names (a bad key there is a
 * config error). The gateway's own key, with no store to keep it, lives in the process's key store:
 * the same across reloads and workers, or the tokens out would stop verifying.
 */
async function exchangeKeysFor(config: Config, secrets: SecretsRuntime, keys: SecretStore, logger: Logger, running: ExchangeKeys | null): Promise<ExchangeKeys | null> {
  const exchange = config.token_exchange
  if (!exchange?.enabled) return null
  const secretName = exchange.signing.key === undefined ? null : signingSecretName(exchange.signing.key)
  // A key no longer signing is published while its tokens are accepted: their exp plus the clock
  // tolerance (with lifetime alone, the probe saw a token's last 5 s answered key_not_found).
  const retainMs = exchange.lifetime + OWN_TOKEN_CLOCK_TOLERANCE_MS
  try {
    if (secretName === null) await keepSigningKey(secrets.store, EXCHANGE_KEY, true, logger)
    return createExchangeKeys({ secretName, rotateEveryMs: exchange.signing.rotate_every, retainMs, refreshIntervalMs: config.secrets?.refresh_interval, store: secrets.store, fallback: keys, logger, handover: running?.handover() ?? null })
  } catch (err) {
    if (err instanceof SigningKeyError) throw new ConfigError([`token_exchange.signing.key: ${err.message}`])
    throw err
  }
}

/**
 * Admin API auth for a config: its admin.token, `${secret:}` references resolved. The values the
 * store gives are held to the rules check holds literal tokens to (config/validate.ts): two secrets
 * of one value made the read-only token the admin token (it is checked first), and a value with
 * white space could never be presented (found by an adversarial probe). Refused as a ConfigError at
 * a start or reload (at its place in `loaded`'s file); a refresh that brings such a value throws,
 * and the running admin auth is kept (instance/secrets-refresh.ts).
 */
export function adminFor(config: Config, secrets: SecretsRuntime, loaded?: LoadedConfig): AdminAuth {
  const { token, read_token: readToken } = config.admin
  const resolved = { token: token === undefined ? undefined : secrets.resolve(token), read_token: readToken === undefined ? undefined : secrets.resolve(readToken) }
  const problems = adminTokenProblems(resolved.token, resolved.read_token, 'from the store')
  if (problems.length > 0) {
    throw new ConfigError(problems.map(({ key, message }) => loaded ? formatDiagnostic(loaded.file, loaded.locate({ severity: 'error', path: ['admin', key], message })) : `admin.${key}: ${message}`))
  }
  return adminAuth(resolved.token, resolved.read_token)
}
