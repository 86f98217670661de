// Signing keys per issuer, through jose's remote key set (cached, one shared in-flight reload,
// a newer answer never overwritten by an older one). Around it, what a gateway needs:
//
// - discovery of `jwks_uri` from `{issuer}/.well-known/openid-configuration` when not configured;
// - loading in the background, so a gateway starts while an identity provider is down, serves its
//   other issuers, and picks the provider up when it comes back (retry with backoff);
// - a background refresh every `jwks_refresh_interval`; jose's own expiry is off (cacheMaxAge
//   Infinity) because jose drops to "no keys" when a refresh of expired keys fails, and cached
//   keys must keep serving while the provider is down;
// - a cool-down for failed fetches too: jose cools down only after a successful load, so while a
//   provider is down every token with an unknown `kid` would otherwise trigger a fetch. A 200
//   whose body is no key set (or never ends) is a failed fetch.
import type { createRemoteJWKSet, JSONWebKeySet, JWTVerifyGetKey } from 'jose'
import { jose } from './jose.ts'
import { createSharedResources, withinDeadline, type SharedResources } from '../collections/index.ts'
import type { IssuerConfig } from '../config/index.ts'
import type { BackgroundTasks, Logger } from '../telemetry/index.ts'

const FETCH_TIMEOUT_MS = 5_000
/**
 * A key set or discovery document larger than this is not one: real ones are a few KB, and 1,000
 * RSA keys with their certificate chains stay under it. Read unbounded, a provider (or a proxy in
 * front of it) streaming a large body had the gateway hold it all in memory for the 5 s timeout.
 */
export const MAX_PROVIDER_DOCUMENT_BYTES = 4 * 1024 * 1024
const FIRST_RETRY_MS = 500
const MAX_RETRY_MS = 30_000

export type KeySetState = 'loading' | 'ready' | 'unavailable'

export interface IssuerKeys {
  readonly name: string
  readonly issuer: string
  /** Resolves a token's verification key; undefined until the JWKS URL is known. */
  readonly getKey: JWTVerifyGetKey | undefined
  readonly state: KeySetState
  /** Keys have been loaded at least once (they may be stale if the last refresh failed). */
  readonly hasKeys: boolean
  /** The first load attempt has finished, whatever its outcome (for /readyz). */
  readonly attempted: boolean
  /** Resolves when `attempted` becomes true (a worker joining others that serve waits for it). */
  readonly firstAttempt?: Promise<void>
  /**
   * The key set, for a token that comes before there is one: after the first load has been tried,
   * waiting up to the fetch timeout, as a token that comes during a JWKS fetch waits in jose. The
   * bench's first second after a start found such tokens refused with 503 "still loading" while
   * discovery was read. Undefined when no key set could be had.
   */
  keySetOnceTried(): Promise<JWTVerifyGetKey | undefined>
  readonly lastError: string | null
  /** When the keys were last fetched successfully (ms since the epoch), for the console. */
  readonly lastRefreshAt?: number | null
  /** The public keys held now: their ids and algorithms, never more (the console's issuer list). */
  readonly keys?: ReadonlyArray<{ kid: string | null; kty: string; alg: string | null }>
  /**
   * Fetches the keys again now, not at the next jwks_refresh_interval: a reload asks it, so an
   * operator who removed a compromised key at the provider has the gateway stop honouring it by
   * reloading (before, only a restart or an edit of the issuer's settings did). Keys not loaded yet
   * are being loaded already; offline, nothing is fetched.
   */
  refresh?(): void
  /**
   * Undefined while no thread of the process has found a key of this source withdrawn since this
   * key set's last fetch (one shared-memory load); otherwise a fetch of the keys, which the token
   * waits for, so that a key another worker saw withdrawn is not honoured here.
   */
  catchUp?(): Promise<void> | undefined
  close(): void
}

/** Withdrawal counters: the total (cell 0), then one per source of keys (issuer and jwks_uri), chosen by hash. */
const WITHDRAWAL_CELLS = 256

/**
 * Counters of keys found gone from an issuer's set, for the threads of one process (server.workers:
 * the primary makes them, as it does the API key revocation counters). Each worker fetches its key
 * sets itself, on its own schedule: one worker's fetch that found a key withdrawn left the others
 * honouring it, cached verifications and new tokens alike, up to jwks_refresh_interval (a probe).
 * Now the finder adds one to the total and to its source's cell; every thread's verified-token
 * caches drop what they hold when the total moves (IssuerRegistry.keyRemovalCount), and a key set
 * whose cell moved fetches its keys again before it verifies the next token (IssuerKeys.catchUp).
 */
export function keyWithdrawals(): SharedArrayBuffer {
  return new SharedArrayBuffer((WITHDRAWAL_CELLS + 1) * Int32Array.BYTES_PER_ELEMENT)
}

/** A source's cell (1…WITHDRAWAL_CELLS): FNV-1a of its issuer and jwks_uri. */
function withdrawalCell(config: IssuerConfig): number {
  const source = `${config.issuer} ${config.jwks_uri ?? ''}`
  let hash = 0x811c9dc5
  for (let i = 0; i < source.length; i++) hash = Math.imul(hash ^ source.charCodeAt(i), 0x01000193)
  return 1 + ((hash >>> 0) % WITHDRAWAL_CELLS)
}

/** The keys' identities (kid and public material): read at a fetch only, never per request. */
function keyIdentities(set: JSONWebKeySet): Set<string> {
  return new Set(set.keys.map((key) => JSON.stringify([key.kid ?? null, key.kty, key.crv ?? null, key.n ?? null, key.e ?? null, key.x ?? null, key.y ?? null])))
}

export interface KeySetEvents {
  refreshed(issuer: string): void
  failed(issuer: string): void
}

/** A request wanted a fetch while the cool-down after a failure was still running. */
export class CoolingDown extends Error {
  constructor(issuer: string) {
    super(`the last key fetch for issuer "${issuer}" failed moments ago; not retrying yet`)
    this.name = 'CoolingDown'
  }
}

type RemoteKeySet = ReturnType<typeof createRemoteJWKSet>

/** The keys a key set holds and where it fetched them: what its successor for the same keys starts from. */
interface HeldKeys {
  jwks: JSONWebKeySet
  jwksUri: string
  fetchedAt: number
}

/**
 * `offline`: never fetch (bouncer explain compiles a runtime without touching the network).
 * Otherwise key loads run as the background task issuer_keys: a failed load is counted there.
 */
export type KeyLoading = { offline: true } | { offline?: false; background: BackgroundTasks }

/**
 * `withdrawals`: its registry's counters (keyWithdrawals). `seed`: the keys the key set this one
 * replaces held, for the same issuer and jwks_uri (createIssuerRegistry).
 */
function createIssuerKeys(config: IssuerConfig, logger: Logger, events: KeySetEvents, loading: KeyLoading, withdrawals: Int32Array, seed?: HeldKeys): IssuerKeys & { held(): HeldKeys | undefined } {
  let keySet: RemoteKeySet | undefined
  let state: KeySetState = seed ? 'ready' : 'loading'
  let lastError: string | null = null
  let lastRefreshAt: number | null = seed?.fetchedAt ?? null
  let attempted = false
  let attemptedNow: () => void = () => {}
  const firstAttempt = new Promise<void>((resolve) => (attemptedNow = resolve))
  /** performance.now() of the last failed fetch: on the wall clock, one stepped back kept each new kid in the cool-down (503) for the size of the step. */
  let lastFailureAt = Number.NEGATIVE_INFINITY
  let fromScheduler = false
  /** The jwks_uri discovery named, when the config names none; and whether to ask again (movedKeySet). */
  let discoveredJwksUri: string | undefined
  let rediscover = false
  let retryDelay = FIRST_RETRY_MS
  let timer: NodeJS.Timeout | undefined
  let closed = false
  const background = loading.offline ? undefined : loading.background

  const cell = withdrawalCell(config)
  /** The source's withdrawals this key set's keys are current with: those before its last fetch that worked. */
  let withdrawalsSeen = Atomics.load(withdrawals, cell)
  let catchingUp: Promise<void> | undefined

  const gatedFetch = async (url: string, init: RequestInit): Promise<Response> => {
    const scheduled = fromScheduler
    fromScheduler = false
    if (!scheduled && performance.now() - lastFailureAt < config.jwks_cooldown) throw new CoolingDown(config.name)
    const before = Atomics.load(withdrawals, cell)
    try {
      const response = await fetch(url, init)
      // Thrown here, not left to jose: its "Expected 200 OK from the JSON Web Key Set HTTP response"
      // replaced this in lastError, so /readyz, the console and the cool-down's 503 never said
      // which status the provider answered.
      if (response.status !== 200) {
        await response.body?.cancel().catch(() => {})
        throw new Error(`the JWKS endpoint answered HTTP ${response.status}`)
      }
      // A 200 is a success only once its body is a key set jose can use: read here, under jose's
      // timeout (init.signal). The probe found an error JSON, an HTML page or a body that stalls
      // after its headers counted as a success, so no cool-down began and every unknown kid fetched
      // again (a stalled body costing each request the whole timeout).
      const body = await boundedText(response, 'the JWKS endpoint')
      withdrawalsSeen = before + noteWithdrawnKeys(assertKeySet(body))
      return new Response(body, { status: 200, headers: { 'content-type': 'application/json' } })
    } catch (err) {
      // Kept for the cool-down's 503 that follows, which says why (a probe found it saying only
      // "the last fetch failed" after a fetch a token's unknown kid started).
      lastFailureAt = performance.now()
      lastError = describeFetchError(err)
      throw err
    }
  }

  /**
   * Compared at every fetch that worked, whoever asked for it: the scheduled refresh, a reload, or a
   * token's unknown kid (a provider's first token with its new key). Compared in load() alone, a
   * rotation learnt from an unknown kid was never seen as one (the next refresh found the set it
   * already had), and a token verified with the withdrawn key was answered from the token cache up
   * to jwks_refresh_interval, while the same key's other tokens were refused (found by a probe).
   */
  let published: Set<string> | undefined = seed && keyIdentities(seed.jwks)
  /** 1 when keys were found withdrawn (told to every thread of the process: keyWithdrawals), else 0. */
  function noteWithdrawnKeys(set: JSONWebKeySet): number {
    const fetched = keyIdentities(set)
    const removed = published === undefined ? 0 : [...published].filter((key) => !fetched.has(key)).length
    published = fetched
    if (removed === 0) return 0
    Atomics.add(withdrawals, cell, 1)
    Atomics.add(withdrawals, 0, 1)
    logger.info({ issuer: config.name, removed }, 'issuer keys refreshed: keys the provider no longer publishes are no longer honoured, cached verifications included')
    return 1
  }

  function schedule(ms: number): void {
    if (closed) return
    clearTimeout(timer)
    if (!background) return
    timer = setTimeout(() => void background.run('issuer_keys', load), ms)
    timer.unref()
  }

  function remoteKeySet(jwksUri: string, held?: HeldKeys): RemoteKeySet {
    const { createRemoteJWKSet, customFetch, jwksCache } = jose()
    return createRemoteJWKSet(new URL(jwksUri), {
      cooldownDuration: config.jwks_cooldown,
      cacheMaxAge: Number.POSITIVE_INFINITY,
      timeoutDuration: FETCH_TIMEOUT_MS,
      [customFetch]: gatedFetch,
      ...(held ? { [jwksCache]: { uat: held.fetchedAt, jwks: held.jwks } } : {}),
    })
  }
  if (seed) {
    if (config.jwks_uri === undefined) discoveredJwksUri = seed.jwksUri
    keySet = remoteKeySet(seed.jwksUri, seed)
  }

  /**
   * After a failed refresh of keys found through discovery, the discovery document is read again:
   * a provider that moved its jwks_uri (the old one 404) was otherwise served from the old keys
   * until a restart, each new kid a 503. The cached keys keep serving until the new URI's load.
   */
  async function movedKeySet(): Promise<RemoteKeySet | undefined> {
    let jwksUri: string
    try {
      jwksUri = await discoverJwksUri(config.issuer)
    } catch {
      // Discovery down says nothing of the keys: they are fetched where they were.
      return undefined
    }
    if (jwksUri === discoveredJwksUri) return undefined
    const moved = remoteKeySet(jwksUri)
    fromScheduler = true
    await moved.reload()
    logger.info({ issuer: config.name, from: discoveredJwksUri, to: jwksUri }, 'issuer jwks_uri moved')
    discoveredJwksUri = jwksUri
    return moved
  }

  async function load(): Promise<void> {
    try {
      const moved = rediscover ? await movedKeySet() : undefined
      if (moved) keySet = moved
      else {
        if (!keySet) {
          if (config.jwks_uri === undefined) discoveredJwksUri = await discoverJwksUri(config.issuer)
          keySet = remoteKeySet(config.jwks_uri ?? (discoveredJwksUri as string))
        }
        fromScheduler = true
        await keySet.reload()
      }
      rediscover = false
      if (state !== 'ready') logger.info({ issuer: config.name }, 'issuer keys loaded')
      state = 'ready'
      lastError = null
      lastRefreshAt = Date.now()
      retryDelay = FIRST_RETRY_MS
      schedule(config.jwks_refresh_interval)
      events.refreshed(config.name)
    } catch (err) {
      lastFailureAt = performance.now()
      lastError = describeFetchError(err)
      rediscover = discoveredJwksUri !== undefined && keySet !== undefined
      const cached = holdsKeys()
      state = cached ? 'ready' : 'unavailable'
      // The next attempt is scheduled before the failure is reported: reporting must not stop retries.
      // With cached keys, no sooner than the cool-down, and backing off as without: a 0s
      // jwks_cooldown retried a failing provider at once, tens of fetches and log lines a second.
      schedule(cached ? Math.max(config.jwks_cooldown, retryDelay) : retryDelay)
      retryDelay = Math.min(retryDelay * 2, MAX_RETRY_MS)
      events.failed(config.name)
      const message = cached ? 'issuer key refresh failed: serving cached keys' : 'issuer keys unavailable: retrying'
      background?.failed('issuer_keys', err, { message, fields: { issuer: config.name, reason: lastError, cached_keys: cached } })
    } finally {
      fromScheduler = false
      attempted = true
      attemptedNow()
    }
  }

  /**
   * Keys were loaded (jose never drops them: cacheMaxAge is infinite). Learnt once: jose's jwks()
   * copies the whole set (structuredClone), and an unknown kid's refusal during a cool-down asks
   * this, ~2 ms a request with a 3 MB set (found by an adversarial probe).
   */
  let loadedOnce = false
  function holdsKeys(): boolean {
    loadedOnce ||= keySet?.jwks() !== undefined
    return loadedOnce
  }

  if (background) void background.run('issuer_keys', load)

  return {
    name: config.name,
    issuer: config.issuer,
    held() {
      const jwks = holdsKeys() ? keySet?.jwks() : undefined
      const jwksUri = config.jwks_uri ?? discoveredJwksUri
      return jwks && jwksUri !== undefined ? { jwks, jwksUri, fetchedAt: lastRefreshAt ?? 0 } : undefined
    },
    get getKey() {
      return keySet
    },
    get state() {
      return state
    },
    get hasKeys() {
      return holdsKeys()
    },
    get attempted() {
      return attempted
    },
    firstAttempt,
    async keySetOnceTried() {
      // Offline (explain) no load runs: nothing to wait for.
      if (keySet === undefined && !attempted && background) await withinDeadline(firstAttempt, FETCH_TIMEOUT_MS, 'the first key load', () => {}).catch(() => {})
      return keySet
    },
    get lastError() {
      return lastError
    },
    get lastRefreshAt() {
      return lastRefreshAt
    },
    get keys() {
      return (keySet?.jwks()?.keys ?? []).map((key) => ({ kid: key.kid ?? null, kty: key.kty ?? 'unknown', alg: key.alg ?? null }))
    },
    refresh() {
      if (attempted) schedule(0)
    },
    catchUp() {
      if (catchingUp !== undefined) return catchingUp
      const count = Atomics.load(withdrawals, cell)
      if (count === withdrawalsSeen || !background || !attempted) return undefined
      // Once per withdrawal, whatever the fetch's outcome: a provider down leaves the keys held, as
      // a failed refresh does, and is not asked again by every request.
      withdrawalsSeen = count
      logger.info({ issuer: config.name }, 'issuer keys fetched again: another worker found keys withdrawn from this issuer\'s set')
      catchingUp = background.run('issuer_keys', load).finally(() => (catchingUp = undefined))
      return catchingUp
    },
    close() {
      closed = true
      clearTimeout(timer)
    },
  }
}

/** The body as text, or an error once it passes MAX_PROVIDER_DOCUMENT_BYTES (the rest is not read). */
async function boundedText(response: Response, what: string): Promise<string> {
  const declared = Number(response.headers.get('content-length'))
  if (declared > MAX_PROVIDER_DOCUMENT_BYTES) {
    await response.body?.cancel()
    throw new Error(`${what} answered ${declared} bytes, more than the ${MAX_PROVIDER_DOCUMENT_BYTES} a key set or discovery document may have`)
  }
  const chunks: Uint8Array[] = []
  let bytes = 0
  // Leaving the loop by a throw cancels the stream: the connection is closed, the rest never read.
  for await (const chunk of response.body ?? []) {
    bytes += chunk.length
    if (bytes > MAX_PROVIDER_DOCUMENT_BYTES) {
      throw new Error(`${what} answered more than the ${MAX_PROVIDER_DOCUMENT_BYTES} bytes a key set or discovery document may have`)
    }
    chunks.push(chunk)
  }
  return Buffer.concat(chunks, bytes).toString('utf8')
}

/** The key set the body is; throws unless it is JSON that jose takes as a JSON Web Key Set (RFC 7517 §5). */
function assertKeySet(body: string): JSONWebKeySet {
  let json: unknown
  try {
    json = JSON.parse(body)
  } catch (err) {
    throw new Error('the JWKS endpoint answered 200 with a body that is not JSON', { cause: err })
  }
  try {
    jose().createLocalJWKSet(json as JSONWebKeySet)
  } catch (err) {
    throw new Error('the JWKS endpoint answered 200 with JSON that is not a key set ({"keys": [...]})', { cause: err })
  }
  // A provider that signs tokens publishes a key: an empty set is a glitch (a half-deployed
  // provider, a cache in front of it answering a stub), and taken as the keys it dropped every
  // cached one, refusing every token until the next refresh (found by an adversarial probe).
  if ((json as JSONWebKeySet).keys.length === 0) throw new Error('the JWKS endpoint answered 200 with a key set that holds no key')
  return json as JSONWebKeySet
}

/** OpenID Connect Discovery 1.0 §4: the document must name exactly the configured issuer. */
async function discoverJwksUri(issuer: string): Promise<string> {
  const url = `${issuer.replace(/\/+$/, '')}/.well-known/openid-configuration`
  const response = await fetch(url, { redirect: 'manual', signal: AbortSignal.timeout(FETCH_TIMEOUT_MS), headers: { accept: 'application/json' } })
  if (response.status !== 200) {
    // Not read, its connection stayed taken until the timeout (a body over undici's 64 KB
    // window), one more at each retry of discovery (every 0.5-30 s): let go now, as the JWKS fetch does.
    await response.body?.cancel().catch(() => {})
    throw new Error(`discovery at ${url} answered ${response.status}`)
  }
  let parsed: unknown
  try {
    parsed = JSON.parse(await boundedText(response, `discovery at ${url}`))
  } catch (err) {
    if (err instanceof SyntaxError) throw new Error(`discovery at ${url} answered 200 with a body that is not JSON`, { cause: err })
    throw err
  }
  // `null` read as a document threw "Cannot read properties of null", which /readyz and each 503 repeated (a probe).
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) throw new Error(`discovery at ${url} answered 200 with JSON that is not an object`)
  const document = parsed as { issuer?: unknown; jwks_uri?: unknown }
  if (document.issuer !== issuer) {
    throw new Error(`discovery at ${url} names issuer ${JSON.stringify(document.issuer)}, not the configured "${issuer}"`)
  }
  if (typeof document.jwks_uri !== 'string' || !/^https?:\/\//.test(document.jwks_uri)) {
    throw new Error(`discovery at ${url} has no usable jwks_uri`)
  }
  return document.jwks_uri
}

export function describeFetchError(err: unknown): string {
  if (!(err instanceof Error)) return String(err)
  const cause = (err as { cause?: { code?: string; message?: string } }).cause
  if (err.name === 'JWKSTimeout' || err.name === 'TimeoutError') return 'the identity provider did not answer in time'
  if (cause?.code) return `${err.message} (${cause.code})`
  return err.message
}

export type IssuerRegistry = SharedResources<IssuerConfig, IssuerKeys> & {
  /**
   * Bumped each time a fetch of any thread of the process finds a key gone from an issuer's set. The
   * verified-token caches (verify.ts) compare it at each request and drop what they hold when it
   * moved: a token verified with the removed key was otherwise honoured from the cache up to one more
   * refresh interval.
   */
  keyRemovalCount(): number
}

/**
 * Key sets live as long as their issuer's settings: a reload keeps the loaded keys of an unchanged
 * issuer. One whose other settings changed (its name, jwks_cooldown, jwks_refresh_interval) but not
 * where its keys come from (issuer, jwks_uri) gets a new key set that starts from the keys the old
 * one holds, and refreshes them at once: started empty, such a reload made while the provider was
 * down turned every valid token of the issuer into a 503 until it came back (found by a probe).
 */
export function createIssuerRegistry(logger: Logger, events: KeySetEvents, loading: KeyLoading, sharedWithdrawals?: SharedArrayBuffer): IssuerRegistry {
  // server.workers: the process's withdrawal counters (keyWithdrawals), every worker's; else this registry's own.
  const withdrawals = new Int32Array(sharedWithdrawals ?? keyWithdrawals())
  // Every open key set of each source, not only the newest: a refused reload's key set (or the one a
  // reload back to earlier settings left draining) closing took the source's record with it, and the
  // next reload's key set started empty though the running one held keys (found by a probe).
  const bySource = new Map<string, Set<ReturnType<typeof createIssuerKeys>>>()
  const sourceOf = (c: IssuerConfig) => JSON.stringify([c.issuer, c.jwks_uri ?? null])
  /** The keys fetched last by any open key set of the source. */
  const freshest = (source: string): HeldKeys | undefined => {
    let best: HeldKeys | undefined
    for (const keys of bySource.get(source) ?? []) {
      const held = keys.held()
      if (held !== undefined && (best === undefined || held.fetchedAt > best.fetchedAt)) best = held
    }
    return best
  }
  const keySets = createSharedResources<IssuerConfig, ReturnType<typeof createIssuerKeys>>({
    fingerprint: (c) => JSON.stringify([c.name, c.issuer, c.jwks_uri, c.jwks_refresh_interval, c.jwks_cooldown]),
    create: (config) => {
      const source = sourceOf(config)
      // Offline (explain) nothing is fetched, nor handed on.
      const seed = loading.offline ? undefined : freshest(source)
      const keys = createIssuerKeys(config, logger, events, loading, withdrawals, seed)
      let open = bySource.get(source)
      if (open === undefined) bySource.set(source, (open = new Set()))
      open.add(keys)
      return keys
    },
    close: (keys) => {
      for (const [source, open] of bySource) if (open.delete(keys) && open.size === 0) bySource.delete(source)
      keys.close()
    },
  })
  return { ...keySets, keyRemovalCount: () => Atomics.load(withdrawals, 0) }
}
