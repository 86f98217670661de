import { createSharedResources, type SharedResources } from '../collections/index.ts'
import type { LimitsStoreConfig } from '../config/index.ts'
import type { Logger } from '../telemetry/index.ts'
import type { LimitsStore } from './store.ts'
import { createMemoryStore } from './stores/memory.ts'
import { createRedisStore } from './stores/redis.ts'

export type LimitsStoreRegistry = SharedResources<LimitsStoreConfig, LimitsStore>

/**
 * Stores live as long as their settings: a reload keeps buckets and the Redis connection.
 * `offline` (bouncer explain) never connects: every store is an empty memory store.
 */
export function createLimitsStoreRegistry(logger: Logger, options: { offline?: boolean } = {}): LimitsStoreRegistry {
  return createSharedResources({
    fingerprint: (config) => JSON.stringify(config),
    create: (config) => config.type === 'memory' || options.offline
      ? createMemoryStore({ maxKeys: config.type === 'memory' ? config.max_keys : 1_000, logger })
      : createRedisStore({ url: config.url, prefix: config.prefix, timeoutMs: config.timeout, logger }),
    close: (store) => store.close(),
  })
}
