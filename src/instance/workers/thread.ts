// A request-path worker thread of server.workers: a whole gateway (startGateway) on the shared port
// (SO_REUSEPORT), its admin listener on a Unix socket only the primary reaches, its own audit
// chain, and the limits table the primary made. The primary reloads and drains it by message; an
// uncaught exception drains it and ends the thread with 1, and the primary starts a replacement.
import { readFile } from 'node:fs/promises'
import { parentPort, workerData } from 'node:worker_threads'
import { quietSqliteWarning } from '../../collections/index.ts'
import { loadConfigText, withStartSettings, type LoadedConfig } from '../../config/index.ts'
import { SecretsError } from '../../secrets/index.ts'
import { createLogger } from '../../telemetry/index.ts'
import { handover } from '../handover.ts'
import { ConfigError } from '../prepare.ts'
import type { ReloadResult, StagedReload } from '../reload.ts'
import { startGateway, type GatewayInstance } from '../start.ts'
import type { FromThread, ThreadData, ToThread } from './messages.ts'
import { FIRST_WORKER } from './role.ts'

quietSqliteWarning() // first: Node 22's warning about node:sqlite, which these modules load

/** After an uncaught exception, how long past shutdown_timeout the drain may take. */
const HARD_EXIT_MARGIN_MS = 5_000

const data = workerData as ThreadData
const port = parentPort as NonNullable<typeof parentPort>
const say = (message: FromThread) => port.postMessage(message)

/** A reload asked of this worker (its files changed, it replaced the first worker, or POST /api/reload), done by the primary on every worker. */
const reloadsAsked = new Map<number, (result: ReloadResult) => void>()
let nextReloadAsked = 1
function reloadEverywhere(): Promise<ReloadResult> {
  const id = nextReloadAsked++
  return new Promise((resolve) => {
    reloadsAsked.set(id, resolve)
    say({ type: 'reload-asked', id })
  })
}

/** The config the others run, with the listeners and audit the process started with (the same, unless a reload changed them). */
function configToRun(): LoadedConfig {
  const running = loadConfigText(data.configText, data.configFile, data.env)
  return running.config ? { ...running, config: withStartSettings(data.startSettings, running.config) } : running
}

/** Its log lines go to the primary, which writes them from its queue (telemetry/logger.ts). */
const toPrimary = { write: (line: string) => say({ type: 'log', line }) }

let gateway: GatewayInstance
try {
  // A Buffer crosses to a thread as a plain Uint8Array.
  const role = { ...data.role, ticketKeys: data.role.ticketKeys && Buffer.from(data.role.ticketKeys), replacement: data.replacement }
  const loaded = handover(configToRun())
  const logger = createLogger({ level: loaded.config.telemetry.log_level, destination: toPrimary })
  gateway = await startGateway({ configFile: data.configFile, loaded, port: data.port, env: data.env, worker: role, reloadEverywhere, logger })
} catch (err) {
  const lines = err instanceof ConfigError ? err.lines : null
  say({ type: 'failed', message: (err as Error).message, code: ((err as NodeJS.ErrnoException).code ?? null), lines, secrets: err instanceof SecretsError })
  process.exit(2)
}

let stopping = false
let crashed = false
function drain(): void {
  if (stopping) return
  stopping = true
  say({ type: 'draining', shutdownTimeoutMs: gateway.state.runtime.config.server.shutdown_timeout })
  gateway.shutdown().then(
    () => process.exit(crashed ? 1 : 0),
    (err: unknown) => {
      gateway.logger.error({ err }, 'worker shutdown failed')
      process.exit(1)
    },
  )
}

const staged = new Map<number, Extract<StagedReload, { ok: true }>>()
port.on('message', (message: ToThread) => {
  if (message.type === 'drain') drain()
  else if (message.type === 'ping') say({ type: 'pong' })
  else if (message.type === 'reload-done') {
    reloadsAsked.get(message.id)?.(message.result)
    reloadsAsked.delete(message.id)
  } else if (message.type === 'stage') {
    void gateway.background.run('reload', async () => {
      let outcome: StagedReload
      try {
        outcome = await gateway.stageReload(message.text, Buffer.from(message.ticketKeys), message.generation)
      } catch (err) {
        say({ type: 'staged', id: message.id, result: { ok: false, errors: [`the reload failed: ${(err as Error).message}`] }, tlsFiles: null })
        throw err
      }
      if (outcome.ok) staged.set(message.id, outcome)
      say({ type: 'staged', id: message.id, result: outcome.ok ? { ok: true, generation: gateway.state.runtime.generation, warnings: [] } : outcome.result, tlsFiles: outcome.ok ? outcome.tlsFiles : null })
    })
  } else {
    const held = staged.get(message.id)
    staged.delete(message.id)
    if (message.type === 'abort') held?.abort()
    else {
      const result = held ? held.commit() : { ok: false as const, errors: ['this worker holds no such staged reload'] }
      const { server } = gateway.state.runtime.config
      say({ type: 'reloaded', id: message.id, result, shutdownTimeoutMs: server.shutdown_timeout, stallTimeoutMs: server.worker_stall_timeout })
    }
  }
})
process.on('unhandledRejection', (reason) => {
  gateway.background.failed('unhandled_rejection', reason, { message: 'a promise rejected and nothing handled it: the worker keeps serving' })
})
// As `bouncer serve` does for the whole process (src/cli/serve.ts): the thread is in an undefined
// state, so it drains and ends; the primary starts a clean one in its place.
process.on('uncaughtException', (err) => {
  gateway.background.failed('uncaught_exception', err, { message: 'an uncaught exception: draining the worker, then ending it' })
  if (crashed) process.exit(1)
  crashed = true
  setTimeout(() => process.exit(1), gateway.state.runtime.config.server.shutdown_timeout + HARD_EXIT_MARGIN_MS).unref()
  drain()
})

const address = new URL(gateway.url)
say({ type: 'ready', url: gateway.url, port: Number(address.port || (address.protocol === 'https:' ? 443 : 80)) })
// The first worker alone watches the config and TLS files: an edit or a renewed certificate made
// while it was being replaced was seen by no watcher (a probe: w2 served the old certificate for
// good). A renewal's reload reads the config file too, as it does in one process. Without TLS only
// an edit can have been missed: a file still the text in force asks for nothing (every crash of
// the first worker reloaded every worker).
const config = gateway.state.runtime.config
if (data.replacement && data.role.id === FIRST_WORKER && (config.server.watch_config || config.server.tls)) {
  void gateway.background.run('reload', async () => {
    if (!config.server.tls && (await readFile(data.configFile, 'utf8').catch(() => null)) === data.configText) return
    await reloadEverywhere()
  })
}
