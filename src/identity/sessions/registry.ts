// Session stores live as long as their settings: a reload that keeps sign_in.session.store keeps
// every session (the memory store's included), whatever it does to session.idle (the store takes
// the new timeout once that config serves). `offline` (bouncer explain) opens nothing.
import { createSharedResources, type SharedResources } from '../../collections/index.ts'
import type { SessionStoreConfig } from '../../config/index.ts'
import type { Logger } from '../../telemetry/index.ts'
import type { KeyLoading } from '../issuers.ts'
import { openMemorySessionStore } from './memory-store.ts'
import { openRedisSessionStore } from './redis-store.ts'
import { openSqliteSessionStore } from './sqlite-store.ts'
import type { SessionStore } from './store.ts'

export interface SessionStoreSettings {
  store: SessionStoreConfig
  idle: number
}

export function openSessionStore(settings: SessionStoreSettings, logger: Logger | null): SessionStore {
  const { store, idle } = settings
  switch (store.type) {
    case 'memory':
      return openMemorySessionStore(idle, { logger })
    case 'sqlite':
      return openSqliteSessionStore(store.path, idle)
    case 'redis':
      return openRedisSessionStore({ url: store.url, prefix: store.prefix, timeoutMs: store.timeout, idleMs: idle, logger })
  }
}

export type SessionStoreRegistry = SharedResources<SessionStoreSettings, SessionStore>

export function createSessionStoreRegistry(logger: Logger, loading: KeyLoading): SessionStoreRegistry {
  const stores = createSharedResources<SessionStoreSettings, SessionStore>({
    // The store's settings only: with the idle timeout in it, a reload that changed only the
    // timeout opened a new, empty memory store and signed everyone out (an adversarial probe).
    fingerprint: (settings) => JSON.stringify(settings.store),
    create: (settings) => {
      const store = openSessionStore(loading.offline ? { ...settings, store: { type: 'memory' } } : settings, logger)
      logger.debug({ store: store.kind, location: store.location }, 'session store open')
      return store
    },
    close: (store) => store.close(),
  })
  // The idle timeout is set when the config that names it serves (gateway/compile.ts putInForce),
  // not here at its compile: a refused reload's shorter one ended sessions for good.
  return stores
}
