// What `bouncer serve` runs: one gateway in this process (server.workers: 1, the default), or a
// primary and its request-path worker threads (src/instance/workers) when the config asks for more.
import { instanceIdOf } from '../audit/index.ts'
import { loadConfigText, readConfigFile, workerCount, type Config } from '../config/index.ts'
import { createLogger, type BackgroundTasks, type Logger } from '../telemetry/index.ts'
import { ConfigError, diagnosticLines } from './prepare.ts'
import { handover } from './handover.ts'
import type { ReloadResult } from './reload.ts'
import { startGateway, type StartOptions } from './start.ts'
import { startWorkers, type ShutdownOutcome } from './workers/supervisor.ts'

export interface Serving {
  readonly url: string
  readonly adminUrl: string
  readonly logger: Logger
  readonly background: BackgroundTasks
  /** How many request-path workers serve (1: this process's own event loop). */
  readonly workers: number
  /** The config it started with (admin.token at start-up). */
  config(): Config
  /** server.shutdown_timeout in force, a reload's included: how long a drain may take. */
  shutdownTimeout(): number
  reload(): Promise<ReloadResult>
  shutdown(): Promise<ShutdownOutcome>
}

export async function startServing(options: StartOptions): Promise<Serving> {
  const env = options.env ?? process.env
  const text = await readConfigFile(options.configFile)
  if (typeof text !== 'string') throw new ConfigError(diagnosticLines(text, 'error'))
  const loaded = handover(loadConfigText(text, options.configFile, env))
  const config = loaded.config
  const count = workerCount(config.server)
  if (count <= 1) {
    const gateway = await startGateway({ ...options, loaded })
    return {
      ...gateway,
      workers: 1,
      config: () => config,
      shutdownTimeout: () => gateway.state.runtime.config.server.shutdown_timeout,
      shutdown: async () => {
        await gateway.shutdown()
        return { heldWorkers: [] }
      },
    }
  }
  // The primary's lines name the instance too, as each worker's do (start.ts): a search by instance
  // missed the lines about the workers' crashes and refused reloads.
  const logger = (options.logger ?? createLogger({ level: config.telemetry.log_level })).child({ instance: instanceIdOf(config.audit.instance_id, env) })
  const workers = await startWorkers({ configFile: options.configFile, configText: text, config, count, port: options.port, adminPort: options.adminPort, logger, env })
  return { ...workers, workers: count, config: () => config }
}

