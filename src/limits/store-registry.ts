import type { LimitsStoreConfig } from '../config/index.ts'
import type { Logger } from '../telemetry/index.ts'
import type { LimitsStore } from './store.ts'
import { createMemoryStore } from './stores/memory.ts'
import { createRedisStore } from './stores/redis.ts'

export interface LimitsStoreRegistry {
  acquire(config: LimitsStoreConfig): LimitsStore
  retire(keep: LimitsStore): void
  closeAll(): Promise<void>
}

/**
 * Stores live as long as their settings: a reload keeps buckets and the Redis connection.
 * `offline` (bouncer explain) never connects: every store is an empty memory store.
 */
export function createLimitsStoreRegistry(logger: Logger, options: { offline?: boolean } = {}): LimitsStoreRegistry {
  const live = new Map<string, LimitsStore>()
  return {
    acquire(config) {
      const key = JSON.stringify(config)
      let store = live.get(key)
      if (!store) {
        store = config.type === 'memory' || options.offline
          ? createMemoryStore({ maxKeys: config.type === 'memory' ? config.max_keys : 1_000, logger })
          : createRedisStore({ url: config.url, prefix: config.prefix, timeoutMs: config.timeout, logger })
        live.set(key, store)
      }
      return store
    },
    retire(keep) {
      for (const [key, store] of live) {
        if (store === keep) continue
        live.delete(key)
        void store.close()
      }
    },
    async closeAll() {
      await Promise.all([...live.values()].map((s) => s.close()))
      live.clear()
    },
  }
}
