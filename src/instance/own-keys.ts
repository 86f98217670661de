// The store of the keys the gateway makes itself when no configured store keeps them (the identity
// assertion key, the token exchange key), and of the key that seals MCP session ids (which no
// configured store keeps: sessions end with the process): one per process, every worker's and every reload's
// (secrets/shared-memory.ts). Both keys are made with the store, before any worker or reload can
// look for them: two workers preparing a config at once would otherwise each make one, and until
// each read the other's, a token one signed was refused by the other.
import { randomBytes } from 'node:crypto'
import { EXCHANGE_KEY, MCP_SESSION_KEY, newExchangeKey, newSessionKey } from '../agents/index.ts'
import { sharedKeyStore, type SharedKeyStore } from '../secrets/index.ts'
import { ASSERTION_KEY, newAssertionKey } from '../upstream/index.ts'

/** The key a datasource without `key` derives its own from (datasets/registry.ts): one per process, every worker's. */
export const DATASET_KEY = 'bouncer.dataset-key'

/** A new store with its keys made, or (given its buffer, in a worker) the primary's. */
export function ownKeyStore(buffer?: SharedArrayBuffer): SharedKeyStore {
  if (buffer !== undefined) return sharedKeyStore(buffer)
  const store = sharedKeyStore()
  store.put(ASSERTION_KEY, newAssertionKey())
  store.put(EXCHANGE_KEY, newExchangeKey())
  store.put(MCP_SESSION_KEY, newSessionKey())
  store.put(DATASET_KEY, randomBytes(32).toString('base64url'))
  return store
}
