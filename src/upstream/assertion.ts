// X-Bouncer-Assertion (SPEC "On the wire"): a JWT the gateway signs (ES256) telling an upstream who
// is calling — `iss` the gateway, `aud` the upstream's name, `sub`, `roles`, `idp` the original
// issuer, `exp` within 5 minutes — verifiable with the keys at GET /.well-known/jwks.json.
//
// Assertions are cached until shortly before they expire, so the request path rarely signs; when it
// does, node:crypto signs synchronously. The cache key is the JSON of every claim the assertion
// states about the caller, from the same object the payload is built from: a cached assertion can
// never speak for another caller (two tokens with one `sub` but different `azp` once shared one).
// The signing key lives in the secrets store (`bouncer.assertion-key`), rotates every
// `assertion.rotate_every`, and a rotated-out key stays published until every assertion it signed
// has expired.
//
// A new key is published before it signs: verifiers cache the JWKS (ours says max-age=60; jose's
// createRemoteJWKSet refetches for an unknown kid at most every 30 s, jwks-rsa rate-limits), so an
// assertion with a kid published a moment ago was refused by every one that had just fetched (a
// probe: 11,975 of 21,897 requests 401 across a rotation). The switch time is the key's own
// creation time from the store, which every worker and instance reads alike, so they switch together.
import { createHash, createPrivateKey, generateKeyPairSync, randomUUID, sign, type KeyObject } from 'node:crypto'
import { createLru } from '../collections/index.ts'
import { subjectIssuer, type Identity } from '../request/index.ts'
import { firstFor, type SecretStore } from '../secrets/index.ts'
import type { Logger } from '../telemetry/index.ts'

export const ASSERTION_KEY = 'bouncer.assertion-key'
const CACHE_ENTRIES = 10_000
/**
 * How long a new key is published before it signs: the JWKS's max-age (60 s; it also covers jose's
 * 30 s cool-down) and 30 s for the workers' and instances' refresh_interval and their clocks' skew,
 * or the refresh_interval and 10 s of skew where that is longer: a worker that read the new key late
 * would otherwise sign with it the moment it saw it, before any verifier had (an item of the notes).
 */
export const PUBLISH_AHEAD_MS = 90_000
const JWKS_MAX_AGE_MS = 60_000
const CLOCK_SKEW_MS = 10_000

export function publishAheadFor(refreshIntervalMs: number): number {
  return Math.max(PUBLISH_AHEAD_MS, JWKS_MAX_AGE_MS + refreshIntervalMs + CLOCK_SKEW_MS)
}
/** Tests only: a shorter publish-ahead (a gateway started in-process has no other way in). */
const PUBLISH_AHEAD_ENV = 'BOUNCER_ASSERTION_PUBLISH_AHEAD_MS'

interface SigningKey {
  kid: string
  privateKey: KeyObject
  publicJwk: Record<string, string>
  createdAt: number
}

export interface PublishedJwks {
  keys: Array<Record<string, string>>
}

/**
 * The keys of several signers, each kid once: the current runtime's and those of runtimes a reload
 * replaced whose requests may still sign (a reload that moves the key elsewhere makes a new one).
 */
export function publishedKeysOf(signers: Iterable<AssertionSigner | null>): PublishedJwks {
  const keys = new Map<string, Record<string, string>>()
  for (const signer of signers) for (const key of signer?.jwks().keys ?? []) if (!keys.has(key.kid as string)) keys.set(key.kid as string, key)
  return { keys: [...keys.values()] }
}

export interface AssertionSigner {
  /** The assertion for this caller and upstream (from the cache when it is fresh enough). */
  assertion(upstream: string, identity: Identity, roles: readonly string[]): string
  jwks(): PublishedJwks
  /**
   * Reads the store again (a rotation elsewhere) and, when `rotates`, replaces the key when it is
   * due. Answers whether the key changed. With server.workers only the first worker rotates.
   */
  rotateIfDue(rotates?: boolean): boolean
  /** What a reload's new signer takes over: the key signing now, which may not be the store's current yet. */
  handover(): SignerHandover
}

/** The signing key a signer hands to the one that replaces it (opaque outside this module). */
export interface SignerHandover {
  readonly signing: SigningKey | undefined
}

function base64url(data: Buffer | string): string {
  return Buffer.from(data).toString('base64url')
}

function keyFrom(serialized: string): SigningKey {
  const { jwk, createdAt } = JSON.parse(serialized) as { jwk: Record<string, string>; createdAt: number }
  const privateKey = createPrivateKey({ key: jwk as never, format: 'jwk' })
  const { d: _private, ...publicJwk } = jwk
  return { kid: thumbprint(publicJwk), privateKey, publicJwk, createdAt }
}

/** RFC 7638: the SHA-256 of the key's required members, in lexical order, as the key id. */
function thumbprint(jwk: Record<string, string>): string {
  return base64url(createHash('sha256').update(JSON.stringify({ crv: jwk.crv, kty: jwk.kty, x: jwk.x, y: jwk.y })).digest())
}

/** A new signing key as the store keeps it (what `bouncer secrets rotate bouncer.assertion-key` puts). */
export function newAssertionKey(): string {
  const { privateKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' })
  return JSON.stringify({ jwk: privateKey.export({ format: 'jwk' }), createdAt: Date.now() })
}

function keyOrUndefined(serialized: string | undefined): SigningKey | undefined {
  if (serialized === undefined) return undefined
  try {
    return keyFrom(serialized)
  } catch {
    return undefined
  }
}

export function isAssertionKey(serialized: string): boolean {
  return keyOrUndefined(serialized) !== undefined
}

/** What an assertion says about one request: everything in it but the gateway's `iss` and its times. */
interface StatedClaims {
  aud: string
  sub: string
  roles: readonly string[]
  idp: string
  client_id?: string
  /** On behalf of: the agent acting for `sub` (RFC 8693 §4.1), as the exchanged token named it. */
  act?: { sub: string; iss: string; client_id?: string }
}

function statedClaims(upstream: string, identity: Identity, roles: readonly string[]): StatedClaims {
  const actor = identity.actor
  return {
    aud: upstream, sub: identity.sub, roles, idp: subjectIssuer(identity),
    ...(identity.clientId ? { client_id: identity.clientId } : {}),
    ...(actor ? { act: { sub: actor.sub, iss: actor.iss, ...(actor.clientId ? { client_id: actor.clientId } : {}) } } : {}),
  }
}

export interface SignerOptions {
  issuer: string
  ttlMs: number
  rotateEveryMs: number
  /**
   * Where the key is kept: a writable store (rotated here), a read-only one that holds the key
   * (env or file: several instances share it; rotated by whoever writes it), or else memory only.
   */
  store: SecretStore | null
  /**
   * Where the key is kept when `store` can neither keep nor supply it: the process's own key store
   * (secrets/shared-memory.ts), which its workers and later reloads share. Null: this signer's memory.
   */
  fallback?: SecretStore | null
  logger: Logger
  now?: () => number
  /** How long a new key is published before it signs (default publishAheadFor(refreshIntervalMs), at most half of rotateEveryMs). */
  publishAheadMs?: number
  /** The secrets' refresh_interval: a longer one publishes ahead for longer (publishAheadFor). */
  refreshIntervalMs?: number
  /**
   * The running signer's, on a reload: a new signer went by the store alone, so one made within the
   * publish-ahead signed the new key at once (and a file or env store keeps no previous key to wait
   * with), while the running one still waited (found by review).
   */
  handover?: SignerHandover | null
}

/**
 * How long a rotating signer's new key is published before it signs: the options' own, else the
 * test-only environment variable `envName`, else publishAheadFor the secrets' refresh_interval; at
 * most half the rotation period (rotations every few seconds, in tests, switch at half of it). One
 * rule for the identity assertion key and the token exchange's (agents/exchange/keys.ts).
 */
export function publishAheadOf(options: { publishAheadMs?: number; refreshIntervalMs?: number; rotateEveryMs: number }, envName: string): number {
  const fromEnv = Number(process.env[envName])
  const wanted = options.publishAheadMs ?? (process.env[envName] && Number.isFinite(fromEnv) && fromEnv >= 0 ? fromEnv : publishAheadFor(options.refreshIntervalMs ?? 0))
  return Math.min(wanted, options.rotateEveryMs / 2)
}

/**
 * When a signer's current key was made, as every reader of the store sees it: the later of the time
 * recorded in the key (0 for none) and the store's own version time of `name` (a replaced file's
 * mtime: a key made long ago and mounted now must still be published ahead).
 */
export function keyMadeAt(recorded: number | null | undefined, store: SecretStore | null, name: string): number {
  const stored = Date.parse(store?.versions(name).find((v) => v.label === 'current')?.createdAt ?? '')
  return Math.max(recorded ?? 0, Number.isFinite(stored) ? stored : 0)
}

/** The process key stores already warned about: once at start, not at every reload. */
const warnedAbout = new WeakSet<SecretStore>()

export function createAssertionSigner(options: SignerOptions): AssertionSigner {
  const { issuer, ttlMs, logger } = options
  const now = options.now ?? Date.now
  const publishAheadMs = publishAheadOf(options, PUBLISH_AHEAD_ENV)
  const source = options.store
  const configured = source && (source.writable || isAssertionKey(source.get(ASSERTION_KEY) ?? '')) ? source : null
  if (!configured && firstFor(warnedAbout, options.fallback)) logger.warn(`identity assertions are signed with a key kept in memory only (no writable secrets store, and no ${ASSERTION_KEY} in the ${source?.kind ?? 'absent'} store): it changes at every restart`)
  const store = configured ?? options.fallback ?? null
  let memory: { current: string; previous: string | undefined } | null = store ? null : { current: newAssertionKey(), previous: undefined }
  let current: SigningKey | undefined
  let previous: SigningKey | undefined
  /** The key assertions are signed with: `current` once it has been published long enough, until then the one before. */
  let active: SigningKey | undefined
  /** When `current` starts signing (Infinity once it does). */
  let switchAt = Infinity
  // Keys rotated out of current/previous stay published until every assertion they signed expired
  // (rotations closer together than the ttl, e.g. by hand, must not strand live assertions).
  let retired: Array<{ key: SigningKey; until: number }> = []
  let inherited = options.handover?.signing
  const cache = createLru<string>(CACHE_ENTRIES)

  function load(): void {
    // A store without a usable key (new, or a value that is not a key) gets a fresh one.
    if (store?.writable && !isAssertionKey(store.get(ASSERTION_KEY) ?? '')) {
      if (store.get(ASSERTION_KEY) !== undefined) logger.error(`secret ${ASSERTION_KEY} does not hold a signing key: a new one replaces it`)
      store.put(ASSERTION_KEY, newAssertionKey())
    }
    const currentText = store ? (store.get(ASSERTION_KEY) as string) : (memory as { current: string }).current
    const previousText = store ? store.get(ASSERTION_KEY, 'previous') : memory?.previous
    const before = [current, previous]
    const next = keyOrUndefined(currentText)
    if (!next) {
      // Only a read-only store can get here (a writable one was just repaired): keep signing with what we have.
      logger.error(`secret ${ASSERTION_KEY} in the ${store?.kind} store does not hold a signing key: the current key stays`)
      if (current) return
    }
    current = next ?? keyFrom(currentText)
    previous = keyOrUndefined(previousText)
    const live = new Set([current.kid, previous?.kid, active?.kid, ...retired.map((r) => r.key.kid)])
    for (const old of before) if (old && !live.has(old.kid)) retired.push({ key: old, until: now() + ttlMs })
    // Until the new key has been published for publishAheadMs, sign with the one signing now (at a
    // start: the store's previous one); a key with nothing before it signs at once.
    if (active === undefined && inherited !== undefined) active = inherited.kid === current.kid ? current : inherited
    inherited = undefined
    if (active?.kid !== current.kid) {
      active ??= previous ?? current
      switchAt = keyMadeAt(current.createdAt, store, ASSERTION_KEY) + publishAheadMs
    }
    switchIfDue(now())
  }
  /** Moves signing to `current` once it is due; the key it replaces stays published for a ttl. */
  function switchIfDue(at: number): void {
    const from = active as SigningKey
    if (at >= switchAt) {
      active = current as SigningKey
      switchAt = Infinity
    }
    if (from.kid === active?.kid) return
    if (from.kid !== previous?.kid && from.kid !== current?.kid) retired.push({ key: from, until: at + ttlMs })
    cache.clear() // new assertions with the new key; the ones already out stay valid (old key published)
    if (started) logger.info({ kid: active?.kid, previous: from.kid }, 'identity assertions are signed with the new key')
  }
  const signing = () => active as SigningKey
  let started = false
  load()
  started = true
  let marker = store?.marker(ASSERTION_KEY)

  function sign1(stated: StatedClaims): { token: string; exp: number } {
    const iat = Math.floor(now() / 1000)
    const exp = iat + Math.floor(ttlMs / 1000)
    const key = signing()
    const header = base64url(JSON.stringify({ alg: 'ES256', kid: key.kid, typ: 'JWT' }))
    const payload = base64url(JSON.stringify({ iss: issuer, ...stated, iat, exp, jti: randomUUID() }))
    const input = `${header}.${payload}`
    const signature = sign('sha256', Buffer.from(input), { key: key.privateKey, dsaEncoding: 'ieee-p1363' })
    return { token: `${input}.${base64url(signature)}`, exp }
  }

  return {
    assertion(upstream, identity, roles) {
      const stated = statedClaims(upstream, identity, roles)
      // ≈1 µs per request (Node 24, measured) for a key that cannot fall out of step with the payload.
      const key = JSON.stringify(stated)
      const at = now()
      if (at >= switchAt) switchIfDue(at)
      const cached = cache.get(key, at)
      if (cached !== undefined) return cached
      const { token, exp } = sign1(stated)
      // Refresh with a margin so an upstream never receives one about to expire.
      cache.set(key, token, exp * 1000 - Math.min(60_000, ttlMs / 2))
      return token
    },
    jwks() {
      const at = now()
      if (at >= switchAt) switchIfDue(at)
      if (retired.some((r) => r.until <= at)) retired = retired.filter((r) => r.until > at)
      // The signing key first, then the next one (published ahead), the one before, and the retired.
      const published = new Map<string, SigningKey>()
      for (const k of [signing(), current as SigningKey, ...(previous ? [previous] : []), ...retired.map((r) => r.key)]) if (!published.has(k.kid)) published.set(k.kid, k)
      return { keys: [...published.values()].map((k) => ({ ...k.publicJwk, kid: k.kid, alg: 'ES256', use: 'sig' })) }
    },
    handover: () => ({ signing: active }),
    rotateIfDue(rotates = true) {
      // Another process (bouncer secrets rotate) may have changed the key in the store.
      const seen = store?.marker(ASSERTION_KEY)
      if (store && seen !== marker) {
        marker = seen
        load()
        return true
      }
      if (!rotates || now() - (current as SigningKey).createdAt < options.rotateEveryMs) return false
      if (store && !store.writable) return false // whoever writes the shared key rotates it
      if (store) {
        store.put(ASSERTION_KEY, newAssertionKey())
        marker = store.marker(ASSERTION_KEY)
      } else if (memory) {
        memory = { current: newAssertionKey(), previous: memory.current }
      }
      load()
      logger.info({ kid: current?.kid, signsFrom: new Date(switchAt === Infinity ? now() : switchAt).toISOString() }, 'identity assertion key rotated: published now, signs once verifiers can have it')
      return true
    },
  }
}
