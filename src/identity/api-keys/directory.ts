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
// A key revoked through this gateway's admin API is refused by it at once, by every worker of
// server.workers, even where a lookup of the key is under way: the process's threads share
// revocation counters (a SharedArrayBuffer the primary makes; without workers, the thread's own),
// one cell per slice of the ids, and a forget adds one to the key's cell before the admin API
// answers. A cached record keeps its cell's count from before its read and is used only while the
// count is the same: the cached hit's one extra cost, a shared-memory load and a compare (measured
// in process, CPU per cached lookup: 8-10 ns more, on 22-40 ns before, on a loaded 2-core machine).
// A read during which the count moved may hold the record from before the revocation: it is
// neither cached nor used, the key is read again, and the request (and those that joined the read)
// is answered from that read. Before, a worker heard of another's revocation by a message, which
// could come after the next request, and a lookup begun before a revocation and ended after it
// cached the unrevoked record for api_keys.cache, answering the requests that joined it with it too.
//
// Made-up keys cost a read each, and no cache can stop that (every made-up id is new), nor can
// auth_failures when they come from many addresses. Against a PostgreSQL store a flood of them
// filled its pool, and a real key's read, due every api_keys.cache, queued behind them all: seconds,
// then 503 after the pool's 5 s (found by a probe: 160 made-up keys in flight, a store 100 ms
// away, 3.6-4.6 s for a real key; 0.3-0.9 s now). So reads are in two lanes. An id whose secret
// matched within PROVEN_MS goes to the store at once; any other id waits here for one of the
// store's readers but one, so a proven read finds a connection free, or takes the next one to come
// free (the pool's own queue then holds proven reads only). When UNPROVEN_WAITING other reads
// already wait here, the next is refused at once (503), holding no caller for the pool's timeout.
// Ids are no secret, so a flood may name real ones: each is still one read at a time (the burst for
// an id shares one read), a bound of one per real key.
// The key format has nothing to check locally (an id and a secret, both random): a checksum anyone
// can compute would stop no one who read this, and a MAC would need a key every instance shares.
import { createLru, createSharedResources, isBusy, type SharedResources } from '../../collections/index.ts'
import { API_KEYS_ISSUER, type ApiKeysConfig, type ApiKeyStoreConfig } from '../../config/index.ts'
import type { Identity } from '../../request/index.ts'
import type { BackgroundTasks, Logger } from '../../telemetry/index.ts'
import type { KeyLoading } from '../issuers.ts'
import { openPostgresKeyStore } from './postgres-store.ts'
import { openSqliteKeyStore } from './sqlite-store.ts'
import { ApiKeyReadsBusy, ApiKeyStoreError, type ApiKeyRecord, type ApiKeyStore } from './store.ts'

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

/** How long a key whose secret matched keeps its reads in the proven lane, and how many such keys are remembered. */
const PROVEN_MS = 24 * 60 * 60_000
const PROVEN_ENTRIES = 10_000
/** Reads of unproven ids waiting for a reader, at most; one more is refused at once. */
const UNPROVEN_WAITING = 64

/** Revocation counters: 4096 cells, a key's chosen by the first three hex digits of its id (random). */
const REVOCATION_CELLS = 4096
/** Reads of one lookup, each overlapped by a revocation in its cell, after which it fails (503): no request is answered from such a read. */
const OVERLAPPED_READS = 3
/** The counters of a process without server.workers (every directory on this thread). */
let ownRevocations: Int32Array | undefined

/** Revocation counters for the threads of one process (server.workers: the primary makes them, each worker's directories use them). */
export function apiKeyRevocations(): SharedArrayBuffer {
  return new SharedArrayBuffer(REVOCATION_CELLS * Int32Array.BYTES_PER_ELEMENT)
}

/** A key's record as the request path uses it: its hash decoded, its identity built once. */
export interface KnownKey {
  readonly record: ApiKeyRecord
  readonly hash: Buffer
  readonly identity: Identity
}

export interface ApiKeyDirectory {
  readonly store: ApiKeyStore
  /**
   * The key with this id, or undefined; a promise only when it is read from the store. Rejects with
   * ApiKeyStoreError. Its cache's ages run on the monotonic clock: on the wall clock, one set back an
   * hour kept a cached key (a revoked one, revoked elsewhere) for an hour past api_keys.cache.
   */
  lookup(id: string): KnownKey | undefined | Promise<KnownKey | undefined>
  /** A verified use (`at`: its wall-clock time, the key's last_used): written with the next batch. */
  used(id: string, at: number): void
  /** Forgets a record, cached or being read, on every thread of the process: a key revoked through this gateway is refused by it at once. */
  forget(id: string): void
  /** Writes the last-used times still pending, then closes the store. */
  close(): Promise<void>
}

export function openApiKeyStore(config: ApiKeyStoreConfig): ApiKeyStore {
  return config.type === 'sqlite' ? openSqliteKeyStore(config.path) : openPostgresKeyStore({ url: config.url, schema: config.schema })
}

/** A cached record, with its revocation cell's count from before it was read. */
interface Cached {
  readonly known: KnownKey
  readonly cell: number
  readonly count: number
}

/**
 * `revocations`: the process's revocation counters (apiKeyRevocations), shared by its threads' directories;
 * by default this thread's.
 */
export function createApiKeyDirectory(store: ApiKeyStore, options: { cacheMs: number; background: BackgroundTasks; revocations?: SharedArrayBuffer }): ApiKeyDirectory {
  const { cacheMs, background } = options
  const counts = options.revocations ? new Int32Array(options.revocations) : (ownRevocations ??= new Int32Array(apiKeyRevocations()))
  const cache = createLru<Cached>(cacheMs > 0 ? CACHE_ENTRIES : 0)
  /** Reads under way, with their cell's count when they began: a request joins one only while that count holds. */
  const reading = new Map<string, { count: number; known: Promise<KnownKey | undefined> }>()
  let uses = new Map<string, number>()
  const proven = createLru<true>(PROVEN_ENTRIES)
  /** Unproven ids' reads at once: all the store's readers but one, which the proven keep. */
  const unprovenReaders = Math.max(1, store.readers - 1)
  let unprovenReading = 0
  const unprovenWaiting: Array<() => void> = []

  function find(id: string): Promise<ApiKeyRecord | undefined> {
    return proven.get(id, performance.now()) === true || unprovenReaders === Number.POSITIVE_INFINITY ? store.find(id) : findUnproven(id)
  }

  async function findUnproven(id: string): Promise<ApiKeyRecord | undefined> {
    if (unprovenReading < unprovenReaders) unprovenReading++
    else if (unprovenWaiting.length >= UNPROVEN_WAITING) {
      throw new ApiKeyReadsBusy(`${UNPROVEN_WAITING} reads of API keys not used lately are already waiting for the store`)
    } else await new Promise<void>((resolve) => unprovenWaiting.push(resolve))
    try {
      return await store.find(id)
    } finally {
      // The reader passes to the next waiting read, or is free again.
      const next = unprovenWaiting.shift()
      if (next) next()
      else unprovenReading--
    }
  }

  function read(id: string, since: number): Promise<KnownKey | undefined> {
    const cell = cellOf(id)
    const count = Atomics.load(counts, cell)
    const pending = reading.get(id)
    if (pending?.count === count) return pending.known
    const known = readAt(id, since, cell, count, 1).finally(() => {
      if (reading.get(id)?.known === known) reading.delete(id)
    })
    reading.set(id, { count, known })
    return known
  }

  // The entry's life starts before the read: a revocation committed during it is seen at the next one.
  // One forgotten during it (this gateway's admin API, any thread) moved the count: the record may be
  // from before the revocation, so it is read again, and only a read the count held over is cached.
  async function readAt(id: string, since: number, cell: number, count: number, attempt: number): Promise<KnownKey | undefined> {
    const record = await find(id)
    const after = Atomics.load(counts, cell)
    if (after !== count) {
      if (attempt >= OVERLAPPED_READS) throw new ApiKeyStoreError(`the API key ${id} was read ${attempt} times, each during a revocation`)
      return readAt(id, since, cell, after, attempt + 1)
    }
    if (record === undefined) return undefined
    const known = knownKey(record)
    if (cacheMs > 0) cache.set(id, { known, cell, count }, since + cacheMs)
    return known
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
    lookup(id) {
      const now = performance.now()
      const cached = cache.get(id, now)
      return cached !== undefined && Atomics.load(counts, cached.cell) === cached.count ? cached.known : read(id, now)
    },
    used(id, at) {
      uses.set(id, at)
      proven.set(id, true, performance.now() + PROVEN_MS)
    },
    forget(id) {
      Atomics.add(counts, cellOf(id), 1)
      cache.delete(id)
      proven.delete(id)
    },
    async close() {
      closed = true
      clearTimeout(timer)
      await flushing
      await background.run('api_key_usage', flush)
      await store.close()
    },
  }
}

/** A key's revocation cell: ids are random hex, so the cells share them evenly. */
function cellOf(id: string): number {
  const cell = Number.parseInt(id.slice(0, 3), 16)
  return Number.isNaN(cell) ? 0 : cell % REVOCATION_CELLS
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
 * directory knows no key. `revocations`: the process's revocation counters, with server.workers.
 */
export function createApiKeyDirectoryRegistry(logger: Logger, loading: KeyLoading, revocations?: SharedArrayBuffer): ApiKeyDirectoryRegistry {
  return createSharedResources({
    fingerprint: (config) => JSON.stringify([config.store, config.cache]),
    create: (config) => {
      if (loading.offline) return offlineDirectory()
      const directory = createApiKeyDirectory(openApiKeyStore(config.store), { cacheMs: config.cache, background: loading.background, revocations })
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
    readers: Number.POSITIVE_INFINITY,
    find: () => Promise.reject(new ApiKeyStoreError('API keys are not read offline')),
    insert: () => Promise.reject(new ApiKeyStoreError('API keys are not written offline')),
    list: async () => [],
    revoke: async () => undefined,
    recordUse: async () => {},
    status: () => 'offline',
    answeredOnce: () => true,
    close: async () => {},
  }
  return { store, lookup: (id) => store.find(id).then(() => undefined), used() {}, forget() {}, close: async () => {} }
}
