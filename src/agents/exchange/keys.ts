// The key the gateway signs exchanged tokens with (ES256), and the keys it publishes for them.
//
// Where it is kept, as the identity assertion key is (upstream/assertion.ts):
// - `token_exchange.signing.key: ${secret:NAME}`: an EC P-256 private key (PEM, or the JWK form
//   below) the operator keeps in the secrets store; rotated by putting a new version
//   (`bouncer secrets rotate NAME`), the previous version staying published;
// - otherwise a key the gateway makes and keeps in a writable store (`bouncer.exchange-key`),
//   replaced every `signing.rotate_every`; without such a store, in memory (it changes at restart).
// A key rotated out stays published until every token it signed has expired, and so do the keys of
// a config a reload replaced (handover), whichever key the new config names. A new version is
// published before it signs (publishAheadMs), as the identity assertion key is: a verifier that
// fetched the keys just before (another worker's, an API in token_exchange.audiences) would refuse
// its tokens until it may fetch again.
import { sign, type KeyObject } from 'node:crypto'
import { createKeyRing, EXCHANGE_KEY, publishAheadOf, type KeyRingHandover, type SecretStore } from '../../secrets/index.ts'
import type { Logger } from '../../telemetry/index.ts'

export { EXCHANGE_KEY }
/** Tests only: a shorter publish-ahead (a gateway started in-process or by serve has no other way in). */
const PUBLISH_AHEAD_ENV = 'BOUNCER_EXCHANGE_PUBLISH_AHEAD_MS'

export interface PublishedKeySet {
  keys: Array<Record<string, string>>
}

export interface ExchangeKeys {
  /** A compact JWS of these claims (ES256, typ at+jwt: an access token, RFC 9068 §2.1). */
  sign(claims: Record<string, unknown>): string
  /** The published keys (JWKS, RFC 7517): the current one, the previous one and retired ones still needed. */
  jwks(): PublishedKeySet
  /** The published key with this kid (the current one when none is named), for verifying. */
  publicKey(kid: string | undefined): KeyObject | undefined
  /**
   * Reads the store again (a rotation elsewhere) and, when `rotates`, replaces the gateway's own key
   * when due. With server.workers only the first worker rotates.
   */
  refresh(rotates?: boolean): boolean
  /** Where the key is kept, for the log and the report. */
  readonly keptIn: string
  /** What a reload's keys take over: every key published now, until the tokens it signed have expired. */
  handover(): ExchangeKeyHandover
}

/** The keys a reload's exchange keys keep publishing, and the one signing (opaque outside secrets/). */
export type ExchangeKeyHandover = KeyRingHandover

export interface ExchangeKeyOptions {
  /** The secret token_exchange.signing.key names; null: the key the gateway makes. */
  secretName: string | null
  rotateEveryMs: number
  /** How long a key rotated out stays published: the longest an exchanged token lives. */
  retainMs: number
  store: SecretStore | null
  /**
   * Where the gateway's own key is kept when `store` can neither keep nor supply it: the process's
   * key store (secrets/shared-memory.ts), shared by its workers and later reloads. Null: this object's memory.
   */
  fallback?: SecretStore | null
  logger: Logger
  now?: () => number
  /**
   * The running config's keys, at a reload: those the new config does not sign with stay published
   * until the tokens they signed have expired. Without it, a reload that named another key
   * (signing.key set, changed or removed) refused at once every token the old key had signed.
   */
  handover?: ExchangeKeyHandover | null
  /** How long a new key is published before it signs (default: secrets' publishAheadOf). */
  publishAheadMs?: number
  /** The secrets' refresh_interval: the workers' and instances' delay in reading a new version. */
  refreshIntervalMs?: number
}

export function createExchangeKeys(options: ExchangeKeyOptions): ExchangeKeys {
  const ring = createKeyRing({
    name: options.secretName ?? EXCHANGE_KEY, managed: options.secretName === null,
    rotateEveryMs: options.rotateEveryMs, retainMs: options.retainMs, publishAheadMs: publishAheadOf(options, PUBLISH_AHEAD_ENV),
    store: options.store, fallback: options.fallback, handover: options.handover, logger: options.logger, now: options.now,
    signs: 'exchanged tokens', keyName: 'token exchange signing key',
  })
  return {
    keptIn: ring.keptIn,
    handover: () => ring.handover(),
    sign(claims) {
      const key = ring.signing()
      const header = Buffer.from(JSON.stringify({ alg: 'ES256', kid: key.kid, typ: 'at+jwt' })).toString('base64url')
      const input = `${header}.${Buffer.from(JSON.stringify(claims)).toString('base64url')}`
      const signature = sign('sha256', Buffer.from(input), { key: key.privateKey, dsaEncoding: 'ieee-p1363' })
      return `${input}.${signature.toString('base64url')}`
    },
    jwks() {
      return { keys: ring.published().map((k) => ({ ...k.publicJwk, kid: k.kid, alg: 'ES256', use: 'sig' })) }
    },
    publicKey: (kid) => (kid === undefined ? ring.signing() : ring.find(kid))?.publicKey,
    refresh: (rotates = true) => ring.refresh(rotates),
  }
}
