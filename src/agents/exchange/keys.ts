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
import { createHash, createPrivateKey, createPublicKey, generateKeyPairSync, sign, type KeyObject } from 'node:crypto'
import { firstFor, type SecretStore } from '../../secrets/index.ts'
import type { Logger } from '../../telemetry/index.ts'
import { keyMadeAt, publishAheadOf } from '../../upstream/index.ts'

export const EXCHANGE_KEY = 'bouncer.exchange-key'
/** How often an unknown kid may send the keys back to the store. */
const REREAD_MS = 1_000
/** Tests only: a shorter publish-ahead (a gateway started in-process or by serve has no other way in). */
const PUBLISH_AHEAD_ENV = 'BOUNCER_EXCHANGE_PUBLISH_AHEAD_MS'

export interface PublishedKeySet {
  keys: Array<Record<string, string>>
}

interface SigningKey {
  kid: string
  privateKey: KeyObject
  publicKey: KeyObject
  publicJwk: Record<string, string>
  /** When the gateway made it; null for a key the operator supplied (never rotated here). */
  createdAt: number | null
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

/** The keys a reload's exchange keys keep publishing, and the one signing (opaque outside this module). */
export interface ExchangeKeyHandover {
  readonly keys: ReadonlyArray<{ key: SigningKey; until: number }>
  readonly signing: SigningKey
}

/** The store holds a value that is not a usable key: the config cannot be served. */
export class ExchangeKeyError extends Error {
  constructor(message: string) {
    super(message)
    this.name = 'ExchangeKeyError'
  }
}

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
  /** How long a new key is published before it signs (default publishAheadFor(refreshIntervalMs), at most half of rotateEveryMs). */
  publishAheadMs?: number
  /** The secrets' refresh_interval: the workers' and instances' delay in reading a new version. */
  refreshIntervalMs?: number
}

/** A new key as the store keeps it. */
export function newExchangeKey(): string {
  const { privateKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' })
  return JSON.stringify({ jwk: privateKey.export({ format: 'jwk' }), createdAt: Date.now() })
}

/** RFC 7638 thumbprint of an EC public key: the key id. */
function thumbprint(jwk: Record<string, string>): string {
  return createHash('sha256').update(JSON.stringify({ crv: jwk.crv, kty: jwk.kty, x: jwk.x, y: jwk.y })).digest('base64url')
}

/** An EC P-256 private key from the JWK form (`{"jwk": …, "createdAt": …}`) or PEM; undefined otherwise. */
export function parseExchangeKey(text: string | undefined): SigningKey | undefined {
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

/** Does this value hold a key the exchange can sign with (what `bouncer secrets put` checks)? */
export function isExchangeKey(text: string): boolean {
  return parseExchangeKey(text) !== undefined
}

/** The process key stores already warned about: once at start, not at every reload. */
const warnedAbout = new WeakSet<SecretStore>()

export function createExchangeKeys(options: ExchangeKeyOptions): ExchangeKeys {
  const { logger, store, secretName } = options
  const now = options.now ?? Date.now
  const name = secretName ?? EXCHANGE_KEY
  const managed = secretName === null
  // The gateway's own key needs a store that can keep it, or one that holds it (several instances share it).
  const configured = store && (!managed || store.writable || parseExchangeKey(store.get(name)) !== undefined) ? store : null
  if (!configured && firstFor(warnedAbout, options.fallback)) logger.warn(`exchanged tokens are signed with a key kept in memory only (no writable secrets store, and no ${EXCHANGE_KEY} in it): it changes at every restart, and tokens issued before one stop verifying`)
  const keeper = configured ?? (managed ? options.fallback ?? null : null)
  let memory: { current: string; previous: string | undefined } | null = keeper ? null : { current: newExchangeKey(), previous: undefined }
  const keptIn = configured ? `secret ${name} of the ${configured.kind} secrets store` : 'memory'
  const publishAheadMs = publishAheadOf(options, PUBLISH_AHEAD_ENV)
  let current: SigningKey
  let previous: SigningKey | undefined
  /** The key tokens are signed with: `current` once it has been published long enough, until then the one before. */
  let active: SigningKey | undefined
  /** When `current` starts signing (Infinity once it does). */
  let switchAt = Infinity
  let inherited = options.handover?.signing
  let retired: Array<{ key: SigningKey; until: number }> = []

  function load(): void {
    if (keeper && managed && keeper.writable && parseExchangeKey(keeper.get(name)) === undefined) {
      if (keeper.get(name) !== undefined) logger.error(`secret ${name} does not hold a signing key: a new one replaces it`)
      keeper.put(name, newExchangeKey())
    }
    const currentText = keeper ? keeper.get(name) : memory?.current
    const next = parseExchangeKey(currentText)
    if (!next) {
      const problem = `secret ${name} in the ${keeper?.kind} secrets store does not hold an EC P-256 private key (PEM, e.g. openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256)`
      // At start: the config cannot be served. Later (a bad rotation elsewhere): keep signing with what we have.
      if (current === undefined) throw new ExchangeKeyError(problem)
      logger.error(`${problem}: the current key stays`)
      return
    }
    const before = [current, previous]
    current = next
    previous = parseExchangeKey(keeper ? keeper.get(name, 'previous') : memory?.previous)
    const live = new Set([current.kid, previous?.kid, active?.kid, ...retired.map((r) => r.key.kid)])
    for (const old of before) if (old && !live.has(old.kid)) retired.push({ key: old, until: now() + options.retainMs })
    // Until the new key has been published for publishAheadMs, sign with the one signing now (at a
    // reload: the running config's; at a start: the store's previous one); a key with nothing
    // before it signs at once.
    if (active === undefined && inherited !== undefined) active = inherited.kid === current.kid ? current : inherited
    inherited = undefined
    if (active?.kid !== current.kid) {
      active ??= previous ?? current
      switchAt = keyMadeAt(current.createdAt, keeper, name) + publishAheadMs
    }
    switchIfDue(now())
  }

  /** Moves signing to `current` once it is due; the key it replaces stays published while its tokens live. */
  function switchIfDue(at: number): void {
    const from = active as SigningKey
    if (at < switchAt) return
    active = current
    switchAt = Infinity
    if (from.kid === current.kid) return
    if (from.kid !== previous?.kid) retired.push({ key: from, until: at + options.retainMs })
    if (started) logger.info({ kid: current.kid, previous: from.kid }, 'exchanged tokens are signed with the new key')
  }
  let started = false
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
   * On a kid it does not know, reads the store again if it changed: at most once a second, so
   * tokens with made-up kids cannot turn into a store read each.
   */
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

  function published(): SigningKey[] {
    const at = now()
    if (at >= switchAt) switchIfDue(at)
    if (retired.some((r) => r.until <= at)) retired = retired.filter((r) => r.until > at)
    // The signing key first, then the next one (published ahead), the one before, and the retired.
    const keys = new Map<string, SigningKey>()
    for (const key of [active as SigningKey, current, ...(previous ? [previous] : []), ...retired.map((r) => r.key)]) if (!keys.has(key.kid)) keys.set(key.kid, key)
    return [...keys.values()]
  }

  return {
    keptIn,
    handover() {
      // The keys signing until now may have signed a token just before the swap: a whole lifetime from now.
      const until = now() + options.retainMs
      const signing = active as SigningKey
      return { signing, keys: [{ key: signing, until }, { key: current, until }, ...(previous ? [{ key: previous, until }] : []), ...retired.filter((r) => r.until > now())] }
    },
    sign(claims) {
      const at = now()
      if (at >= switchAt) switchIfDue(at)
      const key = active as SigningKey
      const header = Buffer.from(JSON.stringify({ alg: 'ES256', kid: key.kid, typ: 'at+jwt' })).toString('base64url')
      const input = `${header}.${Buffer.from(JSON.stringify(claims)).toString('base64url')}`
      const signature = sign('sha256', Buffer.from(input), { key: key.privateKey, dsaEncoding: 'ieee-p1363' })
      return `${input}.${signature.toString('base64url')}`
    },
    jwks() {
      return { keys: published().map((k) => ({ ...k.publicJwk, kid: k.kid, alg: 'ES256', use: 'sig' })) }
    },
    publicKey(kid) {
      if (kid === undefined) return (active as SigningKey).publicKey
      const found = published().find((k) => k.kid === kid)?.publicKey
      if (found !== undefined || !rereadMayFind()) return found
      // Another worker (or instance) rotated the shared key since this one last looked.
      return published().find((k) => k.kid === kid)?.publicKey
    },
    refresh(rotates = true) {
      const seen = keeper?.marker(name)
      if (keeper && seen !== marker) {
        marker = seen
        load()
        return true
      }
      if (!rotates || !managed || current.createdAt === null || now() - current.createdAt < options.rotateEveryMs) return false
      if (keeper && !keeper.writable) return false // whoever writes the shared key rotates it
      if (keeper) {
        keeper.put(name, newExchangeKey())
        marker = keeper.marker(name)
      } else if (memory) {
        memory = { current: newExchangeKey(), previous: memory.current }
      }
      load()
      logger.info({ kid: current.kid, previous: previous?.kid, signsFrom: new Date(switchAt === Infinity ? now() : switchAt).toISOString() }, 'token exchange signing key rotated: published now, signs once verifiers can have it')
      return true
    },
  }
}
