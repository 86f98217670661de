import { createSharedResources, type SharedResources } from '../collections/index.ts'
import type { LimitsStoreConfig } from '../config/index.ts'
import type { Logger } from '../telemetry/index.ts'
import type { LimitsStore } from './store.ts'
import { createMemoryStore, type MemoryEntries } from './stores/memory.ts'
import { createRedisStore } from './stores/redis.ts'
import { createSharedMemoryStore, type SharedLimitsTable } from './stores/shared-memory.ts'

export type LimitsStoreRegistry = SharedResources<LimitsStoreConfig, LimitsStore>

/**
 * Stores live as long as their settings (on_error aside): a reload keeps buckets and the Redis connection.
 * `offline` (bouncer explain) never connects: every store is an empty memory store.
 *
 * A changed max_keys makes a new memory store, but not new buckets: every memory store of the
 * registry counts in one set of entries, kept while any of them is live. A new store once started
 * empty, so a reload that followed the "raise limits_store.max_keys" advice handed every spent
 * quota a fresh one (probe finding). With server.workers the workers share one table, which keeps
 * its entries: a store made for a higher max_keys grows it for every worker, a lower one bounds
 * admission (shared-memory.ts).
 */
export function createLimitsStoreRegistry(logger: Logger, options: { offline?: boolean; sharedLimits?: SharedLimitsTable } = {}): LimitsStoreRegistry {
  let memoryEntries: MemoryEntries | null = null
  const memoryStores = new Set<LimitsStore>()
  return createSharedResources({
    // on_error is the runtime's (compile.ts reads it per request): a reload that changes only it
    // keeps the store and its connection, not a new one that has yet to connect.
    fingerprint: (config) => JSON.stringify(config.type === 'redis' ? { ...config, on_error: undefined } : config),
    create: (config) => {
      if (options.offline) return createMemoryStore({ maxKeys: config.type === 'memory' ? config.max_keys : 1_000, logger })
      if (config.type === 'redis') return createRedisStore({ url: config.url, prefix: config.prefix, timeoutMs: config.timeout, logger })
      // server.workers > 1: one table for every worker, grown when a reload raises max_keys.
      if (options.sharedLimits) return createSharedMemoryStore(options.sharedLimits, { maxKeys: config.max_keys, logger })
      memoryEntries ??= new Map()
      const store = createMemoryStore({ maxKeys: config.max_keys, entries: memoryEntries, logger })
      memoryStores.add(store)
      return store
    },
    close: (store) => {
      // The last memory store gone (the config moved to Redis): its entries go with it.
      if (memoryStores.delete(store) && memoryStores.size === 0) {
        memoryEntries?.clear()
        memoryEntries = null
      }
      return store.close()
    },
  })
}
