// A rotating ES256 signing key kept in the secrets store, and the keys published for it: one state
// machine for the identity assertion key (upstream/assertion.ts) and the token exchange's
// (agents/exchange/keys.ts), which each had a copy of it.
//
// - Where it is kept: a writable store (made and rotated here), a read-only one that holds it (env
//   or file: several instances share it; rotated by whoever writes it), else the process's own key
//   store (shared-memory.ts, shared by its workers and later reloads), else this ring's memory.
// - A new key is published before it signs: verifiers cache the JWKS (ours says max-age=60; jose's
//   createRemoteJWKSet refetches for an unknown kid at most every 30 s), so a token with a kid
//   published a moment ago was refused by every one that had just fetched (a probe: 11,975 of
//   21,897 requests 401 across a rotation). The switch time is the key's creation time from the
//   store, which every worker and instance reads alike, so they switch together.
// - A key no longer signing stays published until everything it signed has expired (`retainMs`),
//   and so do the keys of a config a reload replaced (handover), whichever key the new config names.
import { createHash, createPrivateKey, createPublicKey, generateKeyPairSync, type KeyObject } from 'node:crypto'
import type { Logger } from '../telemetry/index.ts'
import { SecretsError, SecretStoreWriteFailed } from './crypto.ts'
import { firstFor } from './shared-memory.ts'
import { putUnlocked, type SecretStore } from './store.ts'

/**
 * How long a new key is published before it signs: the JWKS's max-age (60 s; it also covers jose's
 * 30 s cool-down) and 30 s for the workers' and instances' refresh_interval and their clocks' skew,
 * or the refresh_interval and 10 s of skew where that is longer: a worker that read the new key late
 * would otherwise sign with it the moment it saw it, before any verifier had.
 */
const PUBLISH_AHEAD_MS = 90_000
const JWKS_MAX_AGE_MS = 60_000
const CLOCK_SKEW_MS = 10_000
/** How often an unknown kid may send the ring back to the store. */
const REREAD_MS = 1_000
/** How long a due rotation may meet another process's write lock before it fails, and how often it says so while the lock lasts. */
const LOCK_GRACE_MS = 2_000
const LOCK_SAID_EVERY_MS = 60_000

function publishAheadFor(refreshIntervalMs: number): number {
  return Math.max(PUBLISH_AHEAD_MS, JWKS_MAX_AGE_MS + refreshIntervalMs + CLOCK_SKEW_MS)
}

/**
 * How long a rotating key is published before it signs: the options' own, else the test-only
 * environment variable `envName`, else publishAheadFor the secrets' refresh_interval; at most half
 * the rotation period (rotations every few seconds, in tests, switch at half of it).
 */
export function publishAheadOf(options: { publishAheadMs?: number; refreshIntervalMs?: number; rotateEveryMs: number }, envName: string): number {
  const fromEnv = Number(process.env[envName])
  const wanted = options.publishAheadMs ?? (process.env[envName] && Number.isFinite(fromEnv) && fromEnv >= 0 ? fromEnv : publishAheadFor(options.refreshIntervalMs ?? 0))
  return Math.min(wanted, options.rotateEveryMs / 2)
}

/**
 * When the current key was made, as every reader of the store sees it: the later of the time
 * recorded in the key (0 for none) and the store's own version time of `name` (a replaced file's
 * mtime: a key made long ago and mounted now must still be published ahead).
 */
function keyMadeAt(recorded: number | null, store: SecretStore | null, name: string): number {
  const stored = Date.parse(store?.versions(name).find((v) => v.label === 'current')?.createdAt ?? '')
  return Math.max(recorded ?? 0, Number.isFinite(stored) ? stored : 0)
}

export interface SigningKey {
  kid: string
  privateKey: KeyObject
  publicKey: KeyObject
  publicJwk: Record<string, string>
  /** When the gateway made it; null for a key given as PEM. */
  createdAt: number | null
}

/** The store holds a value that is not a usable key, and there is no key to go on with. */
export class SigningKeyError extends SecretsError {
  constructor(message: string) {
    super(message)
    this.name = 'SigningKeyError'
  }
}

/** A new key as the store keeps it (what `bouncer secrets rotate` puts for the gateway's own keys). */
export function newSigningKey(): string {
  const { privateKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' })
  return JSON.stringify({ jwk: privateKey.export({ format: 'jwk' }), createdAt: Date.now() })
}

/** Does this value hold a key the gateway can sign with (what `bouncer secrets put` checks)? */
export function isSigningKey(text: string): boolean {
  return parseSigningKey(text) !== undefined
}

/** RFC 7638: the SHA-256 of the key's required members, in lexical order, as the key id. */
function thumbprint(jwk: Record<string, string>): string {
  return createHash('sha256').update(JSON.stringify({ crv: jwk.crv, kty: jwk.kty, x: jwk.x, y: jwk.y })).digest('base64url')
}

/** An EC P-256 private key from the form the store keeps (`{"jwk": …, "createdAt": …}`) or PEM; undefined otherwise. */
export function parseSigningKey(text: string | undefined): SigningKey | undefined {
  if (text === undefined) return undefined
  try {
    let privateKey: KeyObject
    let createdAt: number | null = null
    if (text.trimStart().startsWith('{')) {
      const parsed = JSON.parse(text) as { jwk: Record<string, string>; createdAt?: number }
      privateKey = createPrivateKey({ key: parsed.jwk as never, format: 'jwk' })
      createdAt = typeof parsed.createdAt === 'number' ? parsed.createdAt : null
    } else {
      privateKey = createPrivateKey(text)
    }
    if (privateKey.asymmetricKeyType !== 'ec' || privateKey.asymmetricKeyDetails?.namedCurve !== 'prime256v1') return undefined
    const publicKey = createPublicKey(privateKey)
    const jwk = publicKey.export({ format: 'jwk' }) as Record<string, string>
    const publicJwk = { kty: jwk.kty as string, crv: jwk.crv as string, x: jwk.x as string, y: jwk.y as string }
    return { kid: thumbprint(publicJwk), privateKey, publicKey, publicJwk, createdAt }
  } catch {
    return undefined
  }
}

/** What a reload's ring takes over: the key signing now, and every key published, until when. */
export interface KeyRingHandover {
  readonly signing: SigningKey
  readonly keys: ReadonlyArray<{ key: SigningKey; until: number }>
  /**
   * The current key, made ahead of this clock, and when this process first saw it: a reload's ring
   * counted from the reload, so each reload during clock skew put the key's rotation (and the
   * switch to it) off again.
   */
  readonly ahead?: { readonly kid: string; readonly seenAt: number } | null
}

export interface KeyRingOptions {
  /** The secret's name in the store. */
  name: string
  /** The gateway makes and rotates this key; false: the operator's, never replaced here. */
  managed: boolean
  rotateEveryMs: number
  /** How long a key no longer signing stays published: the longest anything it signed lives. */
  retainMs: number
  publishAheadMs: number
  store: SecretStore | null
  /** Where the gateway's own key is kept when `store` can neither keep nor supply it. Null: memory. */
  fallback?: SecretStore | null
  /** The running config's ring, at a reload. */
  handover?: KeyRingHandover | null
  logger: Logger
  now?: () => number
  /** For the log: what the key signs ("identity assertions") and what it is ("identity assertion key"). */
  signs: string
  keyName: string
  /** Called when another key starts signing (a cache of signed tokens is stale). */
  onSwitch?: () => void
}

export interface KeyRing {
  /** Where the key is kept, for the log and the report. */
  readonly keptIn: string
  /** The key to sign with at `at` (now by default), moving to the next one when it is due. */
  signing(at?: number): SigningKey
  /** The published keys: the signing one first, then the next, the one before and the retired ones still needed. */
  published(): SigningKey[]
  /** The published key with this kid; an unknown one reads the store again (at most once a second). */
  find(kid: string): SigningKey | undefined
  /** Reads the store again (a rotation elsewhere) and, when `rotates`, replaces a managed key when due. */
  refresh(rotates: boolean): boolean
  handover(): KeyRingHandover
}

/**
 * A ring is built at once, where a write can wait for another process's write lock only in SQLite's
 * busy handler, which sleeps on the event loop: a reload while the store was locked and held no key
 * (deleted, or junk) stood every request still for 5 s. Before one is built, the key it would make
 * is written here, waiting on timers; still locked after that, it fails (SecretStoreWriteFailed).
 */
export async function keepSigningKey(store: SecretStore | null, name: string, managed: boolean, logger: Logger): Promise<void> {
  if (!store || !managed || !store.writable || !store.tryPut) return
  const held = store.get(name)
  if (parseSigningKey(held) !== undefined) return
  if (held !== undefined) logger.error(`secret ${name} does not hold a signing key: a new one replaces it`)
  await putUnlocked(store, name, newSigningKey())
}

/** The keys warned of as made ahead of this process's clock: once a process, by name. */
const warnedAhead = new Set<string>()

/** The process key stores already warned about, per kind of key: once at start, not at every reload. */
const warnedAbout = new Map<string, WeakSet<SecretStore>>()

export function createKeyRing(options: KeyRingOptions): KeyRing {
  const { logger, store, name, managed, retainMs } = options
  const now = options.now ?? Date.now
  // The gateway's own key needs a store that can keep it, or one that holds it (several instances share it).
  const configured = store && (!managed || store.writable || parseSigningKey(store.get(name)) !== undefined) ? store : null
  if (!warnedAbout.has(name)) warnedAbout.set(name, new WeakSet())
  if (!configured && firstFor(warnedAbout.get(name) as WeakSet<SecretStore>, options.fallback)) {
    logger.warn(`${options.signs} are signed with a key kept in memory only (no writable secrets store, and no ${name} in ${store ? `the ${store.kind} store` : 'one'}): it changes at every restart, and what was signed before one stops verifying`)
  }
  const keeper = configured ?? (managed ? options.fallback ?? null : null)
  let memory: { current: string; previous: string | undefined } | null = keeper ? null : { current: newSigningKey(), previous: undefined }
  let current: SigningKey
  let previous: SigningKey | undefined
  /** The key that signs: `current` once it has been published long enough, until then the one before. */
  let active: SigningKey | undefined
  /** When `current` starts signing (Infinity once it does). */
  let switchAt = Infinity
  let inherited = options.handover?.signing
  // Keys rotated out of current/previous stay published until what they signed has expired
  // (rotations closer together than retainMs, e.g. by hand, must not strand live tokens).
  let retired: Array<{ key: SigningKey; until: number }> = []
  let started = false
  /** The current key, made ahead of this clock, and when this ring first saw it. */
  let ahead: { kid: string; seenAt: number } | null = options.handover?.ahead ?? null

  /**
   * When `key` was made; one made in this clock's future (another instance's clock ahead, this one
   * set back) counts from when it was first seen: its rotation, and the switch to it, waited for
   * the clock to catch up (an hour's skew: an hour late).
   */
  function madeAt(key: SigningKey): number {
    const made = keyMadeAt(key.createdAt, keeper, name)
    const at = now()
    if (made <= at) return made
    if (ahead?.kid !== key.kid) {
      ahead = { kid: key.kid, seenAt: at }
      if (!warnedAhead.has(name)) {
        warnedAhead.add(name)
        logger.warn({ kid: key.kid, createdAt: new Date(made).toISOString() }, `secret ${name} was made ${Math.round((made - at) / 1000)} s ahead of this clock (clocks out of step): its age counts from now`)
      }
    }
    return ahead.seenAt
  }

  /** After start, a value that is no key met another process's write lock: replaced at a later refresh. */
  let replacePending = false

  function load(): void {
    if (keeper && managed && keeper.writable && parseSigningKey(keeper.get(name)) === undefined) {
      if (keeper.get(name) !== undefined && !replacePending) logger.error(`secret ${name} does not hold a signing key: a new one replaces it`)
      // Not in SQLite's busy handler, which sleeps on the event loop (5 s, every request): locked
      // after start, the keys held stay and the next refresh tries again.
      if (keeper.tryPut) {
        if (keeper.tryPut(name, newSigningKey()) === undefined) {
          // Being built (at a reload too: SQLite's busy handler stood every request still for 5 s):
          // keepSigningKey waited for the lock on timers already.
          if (!started) throw new SecretStoreWriteFailed(`secret ${name} could not be written: another process holds the secrets store's write lock`)
          if (!replacePending) logger.error(`secret ${name} is not replaced yet: another process holds the secrets store's write lock; the current key stays, tried again at each refresh`)
          replacePending = true
          return
        }
        replacePending = false
      } else {
        keeper.put(name, newSigningKey())
      }
    }
    const next = parseSigningKey(keeper ? keeper.get(name) : memory?.current)
    if (!next) {
      const problem = `secret ${name} in the ${keeper?.kind} secrets store does not hold an EC P-256 private key (PEM, e.g. openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256)`
      // At start: nothing to sign with. Later (a bad rotation elsewhere): keep signing with what we have.
      if (!started) throw new SigningKeyError(problem)
      logger.error(`${problem}: the current key stays`)
      return
    }
    const before = [current, previous]
    current = next
    previous = parseSigningKey(keeper ? keeper.get(name, 'previous') : memory?.previous)
    const live = new Set([current.kid, previous?.kid, active?.kid, ...retired.map((r) => r.key.kid)])
    for (const old of before) if (old && !live.has(old.kid)) retired.push({ key: old, until: now() + retainMs })
    // Until the new key has been published for publishAheadMs, sign with the one signing now (at a
    // reload: the running config's; at a start: the store's previous one); a key with nothing
    // before it signs at once.
    if (active === undefined && inherited !== undefined) active = inherited.kid === current.kid ? current : inherited
    inherited = undefined
    if (active?.kid !== current.kid) {
      active ??= previous ?? current
      switchAt = madeAt(current) + options.publishAheadMs
    }
    switchIfDue(now())
  }

  /** Moves signing to `current` once it is due; the key it replaces stays published while what it signed lives. */
  function switchIfDue(at: number): void {
    const from = active as SigningKey
    if (at < switchAt) return
    active = current
    switchAt = Infinity
    if (from.kid === current.kid) return
    if (from.kid !== previous?.kid) retired.push({ key: from, until: at + retainMs })
    options.onSwitch?.()
    if (started) logger.info({ kid: current.kid, previous: from.kid }, `${options.signs} are signed with the new key`)
  }

  load()
  started = true
  const live = new Set(published().map((k) => k.kid))
  for (const handed of options.handover?.keys ?? []) {
    if (!live.has(handed.key.kid) && handed.until > now()) {
      live.add(handed.key.kid)
      retired.push(handed)
    }
  }
  let marker = keeper?.marker(name)

  /**
   * A due rotation the store's write lock refused: a lock held past LOCK_GRACE_MS fails it, at most
   * once a minute (the refresh's background task logs and counts it). It returned false and said
   * nothing, so a store locked for good (a forgotten sqlite3 session) kept the old key unseen.
   */
  let lockedSince: number | null = null
  let lockSaidAt = -Infinity
  function lockMet(): false {
    const at = now()
    lockedSince ??= at
    if (at - lockedSince < LOCK_GRACE_MS || at - lockSaidAt < LOCK_SAID_EVERY_MS) return false
    lockSaidAt = at
    throw new SecretStoreWriteFailed(`the secrets store is locked: another process has held its write lock for ${Math.round((at - lockedSince) / 1000)} s, so the ${options.keyName} is not rotated (the current key stays; tried again at each refresh)`)
  }

  /** Reads the store again if it changed since: at most once a second, so made-up kids cannot each cost a read. */
  let rereadAt = -Infinity
  function rereadMayFind(): boolean {
    if (!keeper || now() - rereadAt < REREAD_MS) return false
    rereadAt = now()
    try {
      const seen = keeper.marker(name)
      if (seen === marker) return false
      marker = seen
      load()
      return true
    } catch (err) {
      // A store that cannot be read now (damaged, deleted under the gateway): the keys held stay,
      // and the token is refused as one of a key they do not have, not failed as the gateway's error.
      logger.error({ err }, `secret ${name} could not be read again for a token's unknown key: the keys held stay`)
      return false
    }
  }

  function signing(at = now()): SigningKey {
    if (at >= switchAt) switchIfDue(at)
    return active as SigningKey
  }

  function published(): SigningKey[] {
    const at = now()
    if (at >= switchAt) switchIfDue(at)
    if (retired.some((r) => r.until <= at)) retired = retired.filter((r) => r.until > at)
    const keys = new Map<string, SigningKey>()
    for (const key of [active as SigningKey, current, ...(previous ? [previous] : []), ...retired.map((r) => r.key)]) if (!keys.has(key.kid)) keys.set(key.kid, key)
    return [...keys.values()]
  }

  return {
    keptIn: configured ? `secret ${name} of the ${configured.kind} secrets store` : 'memory',
    signing,
    published,
    find(kid) {
      const found = published().find((k) => k.kid === kid)
      if (found !== undefined || !rereadMayFind()) return found
      // Another worker (or instance) rotated the shared key since this one last looked.
      return published().find((k) => k.kid === kid)
    },
    handover() {
      // The key signing until now may have signed a token just before the swap: a whole lifetime from now.
      const until = now() + retainMs
      const key = signing()
      return { signing: key, keys: [{ key, until }, { key: current, until }, ...(previous ? [{ key: previous, until }] : []), ...retired.filter((r) => r.until > now())], ahead }
    },
    refresh(rotates) {
      const seen = keeper?.marker(name)
      if (keeper && (seen !== marker || replacePending)) {
        marker = seen
        load()
        return true
      }
      // A PEM key records no time: its age counts from the store's version of it.
      if (!rotates || !managed || now() - madeAt(current) < options.rotateEveryMs) return false
      if (keeper && !keeper.writable) return false // whoever writes the shared key rotates it
      if (keeper) {
        // Not in SQLite's busy handler, which sleeps on the event loop: a store another process
        // holds the write lock of is tried again at the next refresh.
        if (keeper.tryPut) {
          if (keeper.tryPut(name, newSigningKey()) === undefined) return lockMet()
          lockedSince = null
        } else {
          keeper.put(name, newSigningKey())
        }
        marker = keeper.marker(name)
      } else if (memory) {
        memory = { current: newSigningKey(), previous: memory.current }
      }
      load()
      logger.info({ kid: current.kid, previous: previous?.kid, signsFrom: new Date(switchAt === Infinity ? now() : switchAt).toISOString() }, `${options.keyName} rotated: published now, signs once verifiers can have it`)
      return true
    },
  }
}
