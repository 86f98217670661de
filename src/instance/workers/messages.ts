// What the primary and its request-path worker threads say to each other.
import type { ReloadResult } from '../reload.ts'
import type { WorkerRole } from './role.ts'

export interface ThreadData {
  configFile: string
  /** The port every worker listens on (the first worker's when the config or --port says 0). */
  port: number | undefined
  role: WorkerRole
  env: NodeJS.ProcessEnv
}

export type ToThread =
  | { type: 'reload'; id: number }
  | { type: 'drain' }

export type FromThread =
  | { type: 'ready'; url: string; port: number }
  /** It could not start: a config error's lines, or a listen error's code and message. */
  | { type: 'failed'; message: string; code: string | null; lines: string[] | null }
  /** `shutdownTimeoutMs`: the worker's server.shutdown_timeout after the reload. */
  | { type: 'reloaded'; id: number; result: ReloadResult; shutdownTimeoutMs: number }
  /** It began draining, within its own shutdown_timeout (whatever reload, its own or the primary's, set it last). */
  | { type: 'draining'; shutdownTimeoutMs: number }
