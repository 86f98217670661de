// A command that only reads or revokes (keys list|revoke, sessions list|revoke) opens no SQLite
// store that is not there yet: opening one makes it. `keys list` and `sessions list` made data/ and
// the database beside the config (run by root, owned by root, so the gateway's own user could then
// not open its store), and keys list answered "no API keys" for them.
import { existsSync } from 'node:fs'
import type { ApiKeyStoreConfig, SessionStoreConfig } from '../config/index.ts'

/** The SQLite store's file when it is not there yet; null for one that is, or a store of another type. */
export function missingStore(store: ApiKeyStoreConfig | SessionStoreConfig): string | null {
  return store.type === 'sqlite' && !existsSync(store.path) ? store.path : null
}
