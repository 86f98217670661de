// What `bouncer serve` runs: one gateway in this process (server.workers: 1, the default), or a
// primary and its request-path worker threads (src/instance/workers) when the config asks for more.
import { loadConfigFile, workerCount, type Config } from '../config/index.ts'
import { createLogger, type BackgroundTasks, type Logger } from '../telemetry/index.ts'
import { ConfigError, diagnosticLines } from './prepare.ts'
import type { ReloadResult } from './reload.ts'
import { startGateway, type StartOptions } from './start.ts'
import { startWorkers } from './workers/supervisor.ts'

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
  shutdown(): Promise<void>
}

export async function startServing(options: StartOptions): Promise<Serving> {
  const env = options.env ?? process.env
  const config = await configOf(options.configFile, env)
  const count = workerCount(config.server)
  if (count <= 1) {
    const gateway = await startGateway(options)
    return { ...gateway, workers: 1, config: () => config, shutdownTimeout: () => gateway.state.runtime.config.server.shutdown_timeout }
  }
  const logger = options.logger ?? createLogger({ level: config.telemetry.log_level })
  const workers = await startWorkers({ configFile: options.configFile, config, count, port: options.port, adminPort: options.adminPort, logger, env })
  return { ...workers, workers: count, config: () => config }
}

/** The checked config alone: the loaded file (its YAML document) is not kept while the gateway starts (startup-garbage.ts). */
async function configOf(file: string, env: NodeJS.ProcessEnv): Promise<Config> {
  const loaded = await loadConfigFile(file, env)
  if (!loaded.config) throw new ConfigError(diagnosticLines(loaded, 'error'))
  return loaded.config
}
