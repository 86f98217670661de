// What a secrets store does. The embedded store keeps versions and can be written; the env and file
// providers read values kept elsewhere (a platform's secret mounts, a CI's variables).
import { setTimeout as delay } from 'node:timers/promises'
import { SecretStoreWriteFailed } from './crypto.ts'

export interface SecretVersion {
  version: number
  createdAt: string
  /** `current` (the newest), `previous` (the one before), or null. */
  label: 'current' | 'previous' | null
}

export interface SecretStore {
  /** `memory`: the keys the gateway makes itself, when no configured store keeps them (shared-memory.ts). */
  readonly kind: 'embedded' | 'env' | 'file' | 'memory'
  readonly writable: boolean
  /** The current value (or the previous one), or undefined when there is none. */
  get(name: string, which?: 'current' | 'previous'): string | undefined
  /** Where the store looked for a secret it does not have, for "does not exist" messages. */
  notFound(name: string): string
  /** A cheap change marker for the current value (a version and its seal, or a file's mtime): a new value, even one under a version number seen before, changes it. */
  marker(name: string): string | undefined
  list(): string[]
  versions(name: string): SecretVersion[]
  /**
   * Every version's value, newest first (embedded only: the others keep one or two). A version
   * that cannot be opened is left out.
   */
  history?(name: string): string[]
  /** Adds a version (embedded only); returns its number. */
  put(name: string, value: string): number
  /**
   * put, or undefined at once while another process holds the store's write lock (embedded only):
   * put waits for it in SQLite's busy handler, which sleeps on the event loop, so the gateway's own
   * writes use this and wait on timers.
   */
  tryPut?(name: string, value: string): number | undefined
  delete(name: string): boolean
  /**
   * Takes `name`'s rotation lease for `holder` for `ms`, or renews it, unless another holder's has
   * not expired (embedded only): true when `holder` holds it; undefined at once while another process
   * holds the store's write lock. Two gateways scheduling one rotation on a shared store each ran
   * its hook: the lease lets one run it, the other skips that round.
   */
  tryLease?(name: string, holder: string, ms: number): boolean | undefined
  /** Gives `holder`'s lease on `name` back; locked, it is left to expire. */
  releaseLease?(name: string, holder: string): void
  close(): void
}

export class ReadOnlyStore extends Error {
  constructor(kind: string) {
    super(`the ${kind} secrets store is read-only: change the values where they are kept`)
    this.name = 'ReadOnlyStore'
  }
}

/** Names: letters, digits and . _ - (they appear in ${secret:NAME}, file names and env names). */
export const SECRET_NAME = /^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$/

/**
 * The signing keys' names, here rather than beside their signers (upstream/, agents/), which
 * re-export them: `bouncer secrets`, which only needs the names, loaded both layers for them (116
 * modules at each start). The audit checkpoint key's stays in audit/, which its worker thread loads.
 */
export const ASSERTION_KEY = 'bouncer.assertion-key'
export const EXCHANGE_KEY = 'bouncer.exchange-key'

/**
 * The keys the gateway makes itself (the identity assertion, token exchange and audit checkpoint
 * keys), which rotate by their own settings or `bouncer secrets rotate NAME`: a secrets.rotation
 * schedule would put random text over one, and a `${secret:}` would send it out (open.ts refuses
 * both; test/unit/secrets/gateway-keys.test.ts holds the list to their names).
 */
export const GATEWAY_KEYS: readonly string[] = [ASSERTION_KEY, EXCHANGE_KEY, 'bouncer.audit-checkpoint-key']

/** What a name that is not one is told, wherever it is given (the config, the command line, the store). */
export function invalidSecretName(name: string): string {
  return `"${name}" is not a valid secret name (letters, digits and . _ -)`
}

/** How long the gateway's own write waits for another process's write lock (on timers): then it fails. */
const LOCK_WAIT_MS = 2_000

/**
 * The new version, waited for on timers while another process holds the store's write lock (an
 * operator's sqlite3, `bouncer secrets` in another shell): waited for in SQLite's busy handler, which
 * sleeps on the event loop, every request of the gateway stood still for 5 s (found by the secrets
 * probe). Still locked after LOCK_WAIT_MS, it fails: a rotation is retried on its backoff, a reload
 * is refused and the running config keeps serving.
 */
export async function putUnlocked(store: SecretStore, name: string, value: string): Promise<number> {
  const { tryPut } = store
  return tryPut ? await unlocked(() => tryPut(name, value)) : store.put(name, value)
}

/** tryLease, waiting on timers as putUnlocked does; a store without leases: always taken. */
export async function leaseUnlocked(store: SecretStore, name: string, holder: string, ms: number): Promise<boolean> {
  const { tryLease } = store
  return tryLease ? await unlocked(() => tryLease(name, holder, ms)) : true
}

/** `attempt` again on timers while it answers undefined (another process's write lock), for up to LOCK_WAIT_MS. */
async function unlocked<T>(attempt: () => T | undefined): Promise<T> {
  const deadline = Date.now() + LOCK_WAIT_MS
  for (let wait = 2; ; wait = Math.min(wait * 2, 100)) {
    const done = attempt()
    if (done !== undefined) return done
    if (Date.now() >= deadline) throw new SecretStoreWriteFailed(`the secrets store is locked: another process has held its write lock for ${LOCK_WAIT_MS / 1000} s`)
    await delay(wait)
  }
}
