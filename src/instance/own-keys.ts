// The store of the keys the gateway makes itself when no configured store keeps them (the identity
// assertion key, the token exchange key), and of the key that seals MCP session ids (which no
// configured store keeps: sessions end with the process): one per process, every worker's and every reload's
// (secrets/shared-memory.ts). For server.workers the primary makes the signing keys with the store,
// before any worker can look for them: two workers preparing a config at once would otherwise each
// make one, and until each read the other's, a token one signed was refused by the other. A single
// process has no such race: its signers make their key when a config first asks for it.
import { randomBytes } from 'node:crypto'
import { EXCHANGE_KEY, MCP_SESSION_KEY, newSessionKey } from '../agents/index.ts'
import { newSigningKey, sharedKeyStore, type SharedKeyStore } from '../secrets/index.ts'
import { ASSERTION_KEY } from '../upstream/index.ts'

/** The key a datasource without `key` derives its own from (datasets/registry.ts): one per process, every worker's. */
export const DATASET_KEY = 'bouncer.dataset-key'

/**
 * The token in the comment of the gateway's Via entries (http/managed-headers.ts viaEntries), by which
 * it tells its own from a client's when it counts a loop: one per process, every worker's (a loop
 * may pass through each), never in an answer.
 */
export const VIA_TOKEN = 'bouncer.via-token'

/**
 * A new store with its keys made (`forWorkers`: the signing keys too), or, given its buffer (in a
 * worker), the primary's.
 */
export function ownKeyStore(from: { buffer: SharedArrayBuffer } | { forWorkers: boolean }): SharedKeyStore {
  if ('buffer' in from) return sharedKeyStore(from.buffer)
  const store = sharedKeyStore()
  if (from.forWorkers) {
    store.put(ASSERTION_KEY, newSigningKey())
    store.put(EXCHANGE_KEY, newSigningKey())
  }
  store.put(MCP_SESSION_KEY, newSessionKey())
  store.put(DATASET_KEY, randomBytes(32).toString('base64url'))
  store.put(VIA_TOKEN, randomBytes(9).toString('base64url'))
  return store
}
