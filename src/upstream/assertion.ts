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
// The key ring (secrets/signing-keys.ts) publishes a new key before it signs with it.
import { randomUUID, sign } from 'node:crypto'
import { createLru } from '../collections/index.ts'
import { subjectIssuer, type Identity } from '../request/index.ts'
import { ASSERTION_KEY, createKeyRing, publishAheadOf, type KeyRingHandover, type SecretStore } from '../secrets/index.ts'
import type { Logger } from '../telemetry/index.ts'

export { ASSERTION_KEY }
const CACHE_ENTRIES = 10_000
/** Tests only: a shorter publish-ahead (a gateway started in-process has no other way in). */
const PUBLISH_AHEAD_ENV = 'BOUNCER_ASSERTION_PUBLISH_AHEAD_MS'

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

/** What a reload's new signer takes over (opaque outside secrets/). */
export type SignerHandover = KeyRingHandover

function base64url(data: Buffer | string): string {
  return Buffer.from(data).toString('base64url')
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
  /** How long a new key is published before it signs (default: secrets' publishAheadOf). */
  publishAheadMs?: number
  /** The secrets' refresh_interval: a longer one publishes ahead for longer. */
  refreshIntervalMs?: number
  /**
   * The running signer's, on a reload: a new signer went by the store alone, so one made within the
   * publish-ahead signed the new key at once (and a file or env store keeps no previous key to wait
   * with), while the running one still waited (found by review).
   */
  handover?: SignerHandover | null
}

export function createAssertionSigner(options: SignerOptions): AssertionSigner {
  const { issuer, ttlMs, logger } = options
  const now = options.now ?? Date.now
  const cache = createLru<string>(CACHE_ENTRIES)
  const ring = createKeyRing({
    name: ASSERTION_KEY, managed: true, rotateEveryMs: options.rotateEveryMs, retainMs: ttlMs, publishAheadMs: publishAheadOf(options, PUBLISH_AHEAD_ENV),
    store: options.store, fallback: options.fallback, handover: options.handover, logger, now,
    signs: 'identity assertions', keyName: 'identity assertion key',
    // New assertions with the new key; the ones already out stay valid (the old key stays published).
    onSwitch: () => cache.clear(),
  })

  function sign1(stated: StatedClaims): { token: string; exp: number } {
    const iat = Math.floor(now() / 1000)
    const exp = iat + Math.floor(ttlMs / 1000)
    const key = ring.signing()
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
      ring.signing(at) // moves to the next key when it is due, which empties the cache (onSwitch)
      const cached = cache.get(key, at)
      if (cached !== undefined) return cached
      const { token, exp } = sign1(stated)
      // Refresh with a margin so an upstream never receives one about to expire.
      cache.set(key, token, exp * 1000 - Math.min(60_000, ttlMs / 2))
      return token
    },
    jwks() {
      return { keys: ring.published().map((k) => ({ ...k.publicJwk, kid: k.kid, alg: 'ES256', use: 'sig' })) }
    },
    handover: () => ring.handover(),
    rotateIfDue: (rotates = true) => ring.refresh(rotates),
  }
}
