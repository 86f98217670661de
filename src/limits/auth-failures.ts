// Failed authentications, throttled per client address (config `auth_failures`). A credential that
// could not be proven (identity/authenticate.ts `unprovenCredential`: a forged or garbled token, an
// unknown API key) takes one from its address's bucket in the limits store. Once the bucket is
// empty, the address's requests to routes that need an identity are answered 429 before their
// credential is read, until the bucket would take one again: after its burst a guesser gets `rate`
// tries, and while it waits it costs the gateway no signature check, no JWKS refetch for a made-up
// kid, no key lookup.
//
// The count is the store's: Redis shares it between instances, the shared table between
// server.workers. The refusal is each process's own, learnt when its own take is refused: a Map
// lookup on the request path, never a store round trip. Every instance learns at the first failure
// it sees once the shared bucket is empty.
import { GatewayError } from '../errors/index.ts'
import type { Rate } from '../config/index.ts'
import { addressKey } from './address-key.ts'
import type { Limiter } from './enforce.ts'
import { rateSpec } from './route-limits.ts'
import type { Check, TakeResult } from './store.ts'

/** The name the refusals carry (the audit record's `limit`, bouncer_rate_limited_total's label). */
export const AUTH_FAILURES_LIMIT = 'auth_failures'
/** Not a name a configured limit can have (they start with a letter or digit): no shared budget. */
const KEY_PREFIX = `.${AUTH_FAILURES_LIMIT}|ip:`
/** Addresses held back at once; past this an address is only counted (the store still is). */
const MAX_HELD = 100_000

/**
 * Address key → when its refusal ends (performance.now() ms), per store's budgets: they are what it
 * holds back for, and a reload keeps them (store-registry.ts; a new max_keys makes a new memory
 * store over the same entries). Kept by each compile's guard, every reload released every held
 * address while its budget stayed spent: its next guess was verified and answered 401 (probe
 * finding). On the wall clock, one set back an hour held every held address an hour more: a 429 to
 * every credential from behind its NAT.
 */
const heldByStore = new WeakMap<object, Map<string, number>>()

/** The 429 of an address held back: the record names the limit (the pipeline's respondWithError). */
export class AddressHeldBack extends GatewayError {
  readonly limit = AUTH_FAILURES_LIMIT
}

export interface AuthFailuresConfig {
  readonly rate: Rate
  readonly burst?: number | undefined
  readonly ip_prefix_v6: number
}

export interface AuthFailureGuard {
  /**
   * `verify`'s identity, unless the address is held back: then its 429 (AddressHeldBack) is thrown
   * and `verify` never runs. A refusal of an unproven credential is counted before it is rethrown:
   * with a store that answers later (Redis) the 401 waits for the count, so the request after the
   * failure that spent the budget is refused, whichever instance it reaches. Only failures wait.
   */
  guarded<T>(clientIp: string, verify: () => Promise<T>): Promise<T>
}

/** Which refusals count: the identity layer's (identity/authenticate.ts unprovenCredential), handed in by the gateway. */
export type CountsAsFailure = (err: unknown) => boolean

export function createAuthFailureGuard(config: AuthFailuresConfig, limiter: Limiter, countsAsFailure: CountsAsFailure): AuthFailureGuard {
  const burst = config.burst ?? config.rate.count
  const rate = rateSpec(config.rate, burst)
  const allows = `${config.rate.count} failed authentication${config.rate.count === 1 ? '' : 's'} per ${config.rate.per} with a burst of ${burst}`
  const budgets = limiter.store.budgets ?? limiter.store
  const held = heldByStore.get(budgets) ?? new Map<string, number>()
  heldByStore.set(budgets, held)
  let lastStoreLog = -Infinity
  // Addresses newly held back since the last line: one line every 10 s at most, however many scan.
  let lastHoldLog = -Infinity
  let newlyHeld = 0

  const hold = (key: string, retryAfterMs: number): void => {
    const now = performance.now()
    const before = held.get(key)
    if (before === undefined && held.size >= MAX_HELD) {
      for (const [k, end] of held) if (end <= now) held.delete(k)
      if (held.size >= MAX_HELD) return
    }
    held.set(key, now + retryAfterMs)
    if (before !== undefined && before > now) return // still held: a renewal, not news
    newlyHeld++
    if (now - lastHoldLog < 10_000) return
    limiter.logger.info({ address: key, addresses: newlyHeld, retry_after_ms: Math.round(retryAfterMs) }, `address held back: its credentials keep failing verification (auth_failures allows ${allows})${newlyHeld > 1 ? `; ${newlyHeld} addresses since the last such line` : ''}`)
    lastHoldLog = now
    newlyHeld = 0
  }
  const learn = (key: string, result: TakeResult): void => {
    if (result.refused === -1) return
    // 'full': the memory store, full of live state, has no room for this address's count. Not
    // counted, it held nobody back, and a client that filled the store (a public route's header
    // key) turned auth_failures off for every address (probe finding). Held for one interval of
    // the rate instead: no burst, but no more than the rate.
    hold(key, result.reason === 'limit' ? result.retryAfterMs : rate.intervalMs)
  }
  const storeFailed = (err: unknown): void => {
    // Uncounted: a store that is away neither holds anyone back nor refuses (on_error is the route limits').
    if (performance.now() - lastStoreLog < 10_000) return
    lastStoreLog = performance.now()
    limiter.logger.warn({ err }, 'limits store unavailable: failed authentications are not counted (auth_failures)')
  }

  /** The 429 for an address that is held back, or null. */
  const refusalFor = (clientIp: string): AddressHeldBack | null => {
    if (held.size === 0) return null
    const key = addressKey(clientIp, config.ip_prefix_v6)
    const until = held.get(key)
    if (until === undefined) return null
    const waitMs = until - performance.now()
    if (waitMs <= 0) {
      held.delete(key)
      return null
    }
    const retryAfter = Math.max(1, Math.ceil(waitMs / 1000))
    return new AddressHeldBack('rate_limited', {
      detail: `Too many credentials from this address could not be verified (auth_failures allows ${allows}): requests that need an identity are refused for ${retryAfter}s. The audit log names each refused credential's reason.`,
      headers: { 'retry-after': String(retryAfter) },
    })
  }
  /** Takes one from the address's bucket; a promise when the store answers later. */
  const countFailure = (clientIp: string): Promise<void> | undefined => {
    const key = addressKey(clientIp, config.ip_prefix_v6)
    const checks: Check[] = [{ key: KEY_PREFIX + key, rate, quota: null }]
    let taken: TakeResult | Promise<TakeResult>
    try {
      taken = limiter.store.take(checks)
    } catch (err) {
      storeFailed(err)
      return undefined
    }
    if (taken instanceof Promise) return taken.then((result) => learn(key, result), storeFailed)
    learn(key, taken)
    return undefined
  }

  return {
    guarded(clientIp, verify) {
      const refusal = refusalFor(clientIp)
      if (refusal !== null) return Promise.reject(refusal)
      return verify().catch(async (err: unknown) => {
        if (countsAsFailure(err)) await countFailure(clientIp)
        throw err
      })
    },
  }
}
