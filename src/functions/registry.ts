// One pool per function, kept across reloads while the function's settings and its module's
// contents stay the same: a reload with an edited module builds a new pool (the old one finishes its
// invocations, each bounded by the function's timeout, then its workers are terminated), an
// unchanged function keeps its warm workers. A shutdown stops invocations still running once
// server.shutdown_timeout has passed.
import { hash } from 'node:crypto'
import { readFileSync } from 'node:fs'
import { createSharedResources, type SharedResources } from '../collections/index.ts'
import type { FunctionConfig } from '../config/index.ts'
import type { BackgroundTasks, Logger } from '../telemetry/index.ts'
import { createFunctionPool, type FunctionPool } from './pool.ts'

export type FunctionRegistry = SharedResources<FunctionConfig, FunctionPool>

/** Offline (bouncer explain) pools start no worker. */
export type FunctionLoading = { offline: true } | { offline?: false; background: BackgroundTasks }

export function createFunctionRegistry(logger: Logger, loading: FunctionLoading): FunctionRegistry {
  const background = loading.offline ? null : loading.background
  return createSharedResources({
    fingerprint: (config) => `${JSON.stringify(config)} ${moduleDigest(config.module)}`,
    create: (config) => createFunctionPool(config, { logger, background }),
    close: (pool) => pool.close(),
    // A reload's: the edited function's invocations still running finish (a review: they were cut
    // at shutdown_timeout, 502 to clients still waiting), each bounded by its timeout.
    retire: (pool) => pool.close({ finishFirst: true }),
  })
}

/**
 * The module file's contents, not its mtime: a copy that keeps the time (rsync -t, a container
 * layer) is still seen as changed. Only this file: an edit to a file it imports is picked up with
 * a change to the module itself or to the function's settings.
 */
function moduleDigest(path: string): string {
  try {
    return hash('sha256', readFileSync(path))
  } catch {
    return 'unreadable' // its workers fail to load it, and say why, per request
  }
}
