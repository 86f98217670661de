// Where the gateway keeps the keys it makes itself (the identity assertion and token exchange
// signing keys) when no configured store can keep them: in memory, one store for the process,
// shared by every request-path worker of server.workers. Each worker made its own key before, so a
// token exchanged on one worker was refused on the other (401 key_not_found, about half the time
// with two) and each worker's JWKS listed only its own key (found by a probe). One store for the
// process also keeps a key across reloads that drop token_exchange and take it back. It is gone at
// restart, as memory is: a writable store (secrets.store: embedded) keeps keys across restarts.
//
// The values are a few small JSON keys, read when a signer loads or checks for a rotation, never
// per request: one JSON document in a SharedArrayBuffer, behind a lock, is all it needs.
import { releaseLock, releaseLockHeldBy, takeLock } from '../collections/index.ts'
import type { SecretStore, SecretVersion } from './store.ts'

/** Int32 cells of the header: the lock (collections/thread-lock.ts), its holder's thread id, the document's length in bytes. */
const LOCK = 0
const OWNER = 1
const LENGTH = 2
export const KEY_STORE_HEADER_BYTES = 12
/** Each key is ~250 bytes with its current and previous versions: room for far more than two. */
const STORE_BYTES = 64 * 1024

interface Entry {
  version: number
  createdAt: string
  current: string
  previous?: { version: number; createdAt: string; value: string }
}

export interface SharedKeyStore extends SecretStore {
  /** What a worker thread receives to open the same store (its workerData). */
  readonly buffer: SharedArrayBuffer
}

/** A new store, or (given the buffer another thread made) the same one. */
export function sharedKeyStore(buffer: SharedArrayBuffer = new SharedArrayBuffer(STORE_BYTES)): SharedKeyStore {
  const header = new Int32Array(buffer, 0, 3)
  const owner = new Int32Array(buffer, OWNER * 4, 1)
  const bytes = new Uint8Array(buffer, KEY_STORE_HEADER_BYTES)
  const decoder = new TextDecoder()
  const encoder = new TextEncoder()

  function locked<T>(work: () => T): T {
    takeLock(header, LOCK, owner)
    try {
      return work()
    } finally {
      releaseLock(header, LOCK, owner)
    }
  }

  // Read and written under the lock only. slice(): TextDecoder does not decode a shared buffer's view.
  function read(): Record<string, Entry> {
    const length = header[LENGTH] as number
    return length === 0 ? {} : (JSON.parse(decoder.decode(bytes.slice(0, length))) as Record<string, Entry>)
  }
  function write(entries: Record<string, Entry>): void {
    const encoded = encoder.encode(JSON.stringify(entries))
    if (encoded.length > bytes.length) throw new Error(`the gateway's in-memory key store holds at most ${bytes.length} bytes`)
    bytes.set(encoded)
    header[LENGTH] = encoded.length
  }
  const entry = (name: string): Entry | undefined => locked(read)[name]

  return {
    kind: 'memory',
    writable: true,
    buffer,
    get(name, which = 'current') {
      const found = entry(name)
      return which === 'current' ? found?.current : found?.previous?.value
    },
    notFound: (name) => `the gateway has not made ${name} yet`,
    marker: (name) => entry(name)?.version.toString(),
    list: () => Object.keys(locked(read)).sort(),
    versions(name) {
      const found = entry(name)
      if (!found) return []
      const versions: SecretVersion[] = [{ version: found.version, createdAt: found.createdAt, label: 'current' }]
      if (found.previous) versions.push({ version: found.previous.version, createdAt: found.previous.createdAt, label: 'previous' })
      return versions
    },
    put(name, value) {
      return locked(() => {
        const entries = read()
        const before = entries[name]
        const version = (before?.version ?? 0) + 1
        entries[name] = {
          version,
          createdAt: new Date().toISOString(),
          current: value,
          ...(before ? { previous: { version: before.version, createdAt: before.createdAt, value: before.current } } : {}),
        }
        write(entries)
        return version
      })
    },
    delete(name) {
      return locked(() => {
        const entries = read()
        if (!(name in entries)) return false
        delete entries[name]
        write(entries)
        return true
      })
    },
    close() {}, // the memory is the process's: every worker and reload keeps using it
  }
}

/** The store's lock, released if the thread `thread` (ended: the primary saw it) held it. */
export function releaseKeyStoreLockOf(buffer: SharedArrayBuffer, thread: number): boolean {
  return releaseLockHeldBy(new Int32Array(buffer, 0, 3), LOCK, new Int32Array(buffer, OWNER * 4, 1), thread)
}

/** True the first time for `store` in `seen` (and for no store at all, always): a warning said once per store. */
export function firstFor(seen: WeakSet<SecretStore>, store: SecretStore | null | undefined): boolean {
  if (!store) return true
  if (seen.has(store)) return false
  seen.add(store)
  return true
}
