// The API keys a running gateway checks against: its store, a short cache of the records, and the
// last-used times, written in batches off the request path. Kept across reloads while the
// `api_keys` settings do not change (a shared resource), closed at shutdown after a last write.
//
// The cache is the bound on a revocation's delay: a record read at time t is used until t +
// `api_keys.cache` (at most 1 s), then read again, so a key revoked anywhere (another instance,
// `bouncer keys revoke`) is refused by every instance within that time. Measured reads per key:
// one per cache period per instance, against a store that answers a primary-key read in tens of
// microseconds (SQLite) or one round trip (PostgreSQL). Unknown ids are not cached: every one is
// a read, one at a time per id (a burst for one id shares one read).
//
// A key revoked through this gateway's admin API is refused by it at once: with server.workers the
// admin request is answered by one worker, which tells the others on a BroadcastChannel (named by
// the store) to forget their cached record too. They kept using it for up to `api_keys.cache`.
import { createHash } from 'node:crypto'
import { BroadcastChannel } from 'node:worker_threads'
import { createLru, createSharedResources, isBusy, type SharedResources } from '../../collections/index.ts'
import { API_KEYS_ISSUER, type ApiKeysConfig, type ApiKeyStoreConfig } from '../../config/index.ts'
import type { Identity } from '../../request/index.ts'
import type { BackgroundTasks, Logger } from '../../telemetry/index.ts'
import type { KeyLoading } from '../issuers.ts'
import { openPostgresKeyStore } from './postgres-store.ts'
import { openSqliteKeyStore } from './sqlite-store.ts'
import { ApiKeyStoreError, type ApiKeyRecord, type ApiKeyStore } from './store.ts'

/** Records kept at most (least recently used out first). */
const CACHE_ENTRIES = 10_000
/**
 * How often the last-used times are written, on average: each wait is drawn between 75% and 125%
 * of it, so that writers sharing a store (the workers of one gateway, whose directories open in the
 * same millisecond at a reload, other instances) do not keep taking its write lock at the same moment.
 */
const USE_FLUSH_MS = 5_000
/** Tries of one batch while another writer holds the store's lock (SQLITE_BUSY), after a random wait each. */
const USE_WRITE_TRIES = 5
const USE_RETRY_MIN_MS = 5
const USE_RETRY_MAX_MS = 50

/** A key's record as the request path uses it: its hash decoded, its identity built once. */
export interface KnownKey {
  readonly record: ApiKeyRecord
  readonly hash: Buffer
  readonly identity: Identity
}

export interface ApiKeyDirectory {
  readonly store: ApiKeyStore
  /** The key with this id, or undefined; a promise only when it is read from the store. Rejects with ApiKeyStoreError. */
  lookup(id: string, now: number): KnownKey | undefined | Promise<KnownKey | undefined>
  /** A verified use: written with the next batch. */
  used(id: string, at: number): void
  /** Forgets a cached record: a key revoked through this gateway is refused here at once. */
  forget(id: string): void
  /** Writes the last-used times still pending, then closes the store. */
  close(): Promise<void>
}

export function openApiKeyStore(config: ApiKeyStoreConfig): ApiKeyStore {
  return config.type === 'sqlite' ? openSqliteKeyStore(config.path) : openPostgresKeyStore({ url: config.url, schema: config.schema })
}

/**
 * `storeConfig`: where the store is; directories of the process's other threads on the same store
 * forget a key this one forgets (a revocation through the admin API reaches every worker at once).
 */
export function createApiKeyDirectory(store: ApiKeyStore, options: { cacheMs: number; background: BackgroundTasks; storeConfig?: ApiKeyStoreConfig }): ApiKeyDirectory {
  const { cacheMs, background } = options
  const cache = createLru<KnownKey>(cacheMs > 0 ? CACHE_ENTRIES : 0)
  const revocations = options.storeConfig === undefined || cacheMs <= 0 ? null : revocationChannel(options.storeConfig, (id) => cache.delete(id))
  const reading = new Map<string, Promise<KnownKey | undefined>>()
  let uses = new Map<string, number>()

  function read(id: string, now: number): Promise<KnownKey | undefined> {
    const pending = reading.get(id)
    if (pending) return pending
    // The entry's life starts before the read: a revocation committed during it is seen at the next one.
    const read = store.find(id).then((record) => {
      if (record === undefined) return undefined
      const known = knownKey(record)
      if (cacheMs > 0) cache.set(id, known, now + cacheMs)
      return known
    }).finally(() => reading.delete(id))
    reading.set(id, read)
    return read
  }

  async function flush(): Promise<void> {
    if (uses.size === 0) return
    const batch = uses
    uses = new Map()
    try {
      await recordUse(batch)
    } catch (err) {
      // Kept for the next write, unless a later use replaced it (bounded: one entry per verified key).
      for (const [id, at] of batch) if ((uses.get(id) ?? 0) < at) uses.set(id, at)
      throw err
    }
  }

  // A lock another writer holds for a moment (its own batch, `bouncer keys`) is not a failure: the
  // store does not wait for it (that would stall the event loop), so the batch is tried again after a
  // short random wait, off the event loop, a bounded number of times. Other errors fail at once.
  async function recordUse(batch: ReadonlyMap<string, number>): Promise<void> {
    for (let attempt = 1; ; attempt++) {
      try {
        await store.recordUse(batch)
        return
      } catch (err) {
        if (attempt >= USE_WRITE_TRIES || !isBusy(err)) throw err
      }
      const wait = USE_RETRY_MIN_MS + Math.random() * (USE_RETRY_MAX_MS - USE_RETRY_MIN_MS)
      await new Promise((resolve) => setTimeout(resolve, wait))
    }
  }

  // One flush at a time: the next is scheduled when one ends, and close() waits for the one under way.
  let closed = false
  let flushing: Promise<void> | undefined
  let timer: NodeJS.Timeout
  const schedule = () => {
    timer = setTimeout(() => {
      flushing = background.run('api_key_usage', flush).finally(() => {
        flushing = undefined
        if (!closed) schedule()
      })
    }, USE_FLUSH_MS * (0.75 + Math.random() / 2)).unref()
  }
  schedule()

  return {
    store,
    lookup(id, now) {
      return cache.get(id, now) ?? read(id, now)
    },
    used(id, at) {
      uses.set(id, at)
    },
    forget(id) {
      cache.delete(id)
      revocations?.postMessage(id)
    },
    async close() {
      closed = true
      revocations?.close()
      clearTimeout(timer)
      await flushing
      await background.run('api_key_usage', flush)
      await store.close()
    },
  }
}

/** The process's threads' channel for the ids forgotten in one store's directories. */
function revocationChannel(storeConfig: ApiKeyStoreConfig, forget: (id: string) => void): BroadcastChannel {
  const digest = createHash('sha256').update(JSON.stringify(storeConfig)).digest('base64url')
  const channel = new BroadcastChannel(`bouncer:api-key-revocations:${digest}`)
  channel.unref() // never what holds a worker open
  channel.onmessage = (event) => {
    const id = (event as { data: unknown }).data
    if (typeof id === 'string') forget(id)
  }
  return channel
}

function knownKey(record: ApiKeyRecord): KnownKey {
  const identity: Identity = Object.freeze({
    issuerName: API_KEYS_ISSUER,
    iss: API_KEYS_ISSUER,
    sub: record.principal,
    clientId: record.id,
    // What trust rules and claim conditions can match: the principal, and the key itself.
    claims: Object.freeze({ iss: API_KEYS_ISSUER, sub: record.principal, client_id: record.id }),
    expiresAt: record.expiresAt === null ? 0 : Math.floor(record.expiresAt / 1000),
  })
  return Object.freeze({ record, hash: Buffer.from(record.hash, 'hex'), identity })
}

export type ApiKeyDirectoryRegistry = SharedResources<ApiKeysConfig, ApiKeyDirectory>

/**
 * Directories live as long as their settings. `offline` (bouncer explain) opens no store: its
 * directory knows no key.
 */
export function createApiKeyDirectoryRegistry(logger: Logger, loading: KeyLoading): ApiKeyDirectoryRegistry {
  return createSharedResources({
    fingerprint: (config) => JSON.stringify([config.store, config.cache]),
    create: (config) => {
      if (loading.offline) return offlineDirectory()
      const directory = createApiKeyDirectory(openApiKeyStore(config.store), { cacheMs: config.cache, background: loading.background, storeConfig: config.store })
      logger.debug({ store: directory.store.kind, location: directory.store.location }, 'API key store open')
      return directory
    },
    close: (directory) => directory.close(),
  })
}

function offlineDirectory(): ApiKeyDirectory {
  const store: ApiKeyStore = {
    kind: 'sqlite',
    location: 'offline',
    find: () => Promise.reject(new ApiKeyStoreError('API keys are not read offline')),
    insert: () => Promise.reject(new ApiKeyStoreError('API keys are not written offline')),
    list: async () => [],
    revoke: async () => undefined,
    recordUse: async () => {},
    close: async () => {},
  }
  return { store, lookup: (id) => store.find(id).then(() => undefined), used() {}, forget() {}, close: async () => {} }
}
