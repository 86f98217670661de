import { createSharedResources, type SharedResources } from '../collections/index.ts'
import type { LimitsStoreConfig } from '../config/index.ts'
import type { Logger } from '../telemetry/index.ts'
import type { LimitsStore } from './store.ts'
import { createMemoryStore } from './stores/memory.ts'
import { createRedisStore } from './stores/redis.ts'
import { createSharedMemoryStore, type SharedLimitsTable } from './stores/shared-memory.ts'

export type LimitsStoreRegistry = SharedResources<LimitsStoreConfig, LimitsStore>

/**
 * Stores live as long as their settings: a reload keeps buckets and the Redis connection.
 * `offline` (bouncer explain) never connects: every store is an empty memory store.
 */
export function createLimitsStoreRegistry(logger: Logger, options: { offline?: boolean; sharedLimits?: SharedLimitsTable } = {}): LimitsStoreRegistry {
  return createSharedResources({
    fingerprint: (config) => JSON.stringify(config),
    create: (config) => config.type === 'memory' && options.sharedLimits && !options.offline
      // server.workers > 1: one table for every worker, sized at start (max_keys changes at restart).
      ? createSharedMemoryStore(options.sharedLimits, { logger })
      : config.type === 'memory' || options.offline
      ? createMemoryStore({ maxKeys: config.type === 'memory' ? config.max_keys : 1_000, logger })
      : createRedisStore({ url: config.url, prefix: config.prefix, timeoutMs: config.timeout, logger }),
    close: (store) => store.close(),
  })
}
