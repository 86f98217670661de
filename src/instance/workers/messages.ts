// What the primary and its request-path worker threads say to each other.
import type { StartSettings } from '../../config/index.ts'
import type { ReloadResult } from '../reload.ts'
import type { WorkerRole } from './role.ts'

export interface ThreadData {
  configFile: string
  /**
   * The config the workers run, as the primary read it: the file at start, then each reload's. A
   * worker never reads the file itself: a replacement that did ran an edit not yet reloaded, beside
   * workers on the config before it (a probe).
   */
  configText: string
  /** What the process started with and a replacement keeps (listeners, audit: config/restart-only.ts). */
  startSettings: StartSettings
  /**
   * A crashed worker's replacement. If it is the first worker, which alone watches the config file
   * (server.watch_config) and the TLS files, it asks for a reload once it listens: an edit or a
   * renewal made while it was being replaced has been seen by no watcher.
   */
  replacement: boolean
  /** The port every worker listens on (the first worker's when the config or --port says 0). */
  port: number | undefined
  role: WorkerRole
  env: NodeJS.ProcessEnv
}

/**
 * A reload is two steps across workers: each stages it (prepares the text the primary read), then
 * the primary commits it on all of them, or aborts it on all when one could not prepare it.
 */
export type ToThread =
  /** `text`: the file, read once by the primary for every worker, so no two stage different versions of it. */
  /** `generation`: the config's (Runtime.generation), the same on every worker: the primary counts the reloads. */
  | { type: 'stage'; id: number; text: string; ticketKeys: Uint8Array; generation: number }
  | { type: 'commit'; id: number }
  | { type: 'abort'; id: number }
  | { type: 'drain' }
  /** The primary's watchdog: a worker's event loop answers with `pong` (supervisor.ts, server.worker_stall_timeout). */
  | { type: 'ping' }
  /** The answer to its `reload-asked`: every worker's reload, all or none. */
  | { type: 'reload-done'; id: number; result: ReloadResult }

export type FromThread =
  | { type: 'ready'; url: string; port: number }
  /**
   * It could not start: a config error's lines, or a listen error's code and message; `secrets`: a
   * SecretsError (the store's trouble, the operator's to fix), whose class does not cross to the primary.
   */
  | { type: 'failed'; message: string; code: string | null; lines: string[] | null; secrets: boolean }
  /**
   * Its config file or TLS files changed (server.watch_config; the first worker alone watches), or
   * a replacement first worker has just started, or POST /api/reload let a caller in
   * on its own admin API (admin access, a console session's Origin): the primary reloads every
   * worker and answers with `reload-done`.
   */
  | { type: 'reload-asked'; id: number }
  /** Staged (ok: waiting for commit or abort) or refused (the result says why). */
  /** `tlsFiles`: a digest of the TLS files it would install, its certificate and CRLs (reload.ts tlsFilesDigest; null without TLS): all must agree. */
  | { type: 'staged'; id: number; result: ReloadResult; tlsFiles: string | null }
  /** Committed. `shutdownTimeoutMs`: the worker's server.shutdown_timeout after the reload. */
  | { type: 'reloaded'; id: number; result: ReloadResult; shutdownTimeoutMs: number; stallTimeoutMs: number }
  | { type: 'pong' }
  /**
   * A log line it made, for the primary to write from its queue (writeRelayedLine): written by the
   * worker, a reader of stderr that stopped reading held the worker until it read.
   */
  | { type: 'log'; line: string }
  /** It began draining, within its own shutdown_timeout (whatever reload, its own or the primary's, set it last). */
  | { type: 'draining'; shutdownTimeoutMs: number }
