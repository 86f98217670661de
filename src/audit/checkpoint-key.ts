// The key that signs audit checkpoints (checkpoint.ts): an Ed25519 key pair the gateway makes.
// Like the identity assertion key, it lives in the secrets store (`bouncer.audit-checkpoint-key`)
// when that store holds it or can keep it — then someone who can edit the audit log's files still
// cannot sign a checkpoint. Without one it is a file beside the checkpoint file
// (`<checkpoint file>.key`, mode 0600), which only helps against someone who can reach the
// database but not that file. `bouncer audit verify` reads the same places for the public key.
import { createHash, createPrivateKey, createPublicKey, generateKeyPairSync, type JsonWebKey, type KeyObject } from 'node:crypto'
import { renameSync, writeFileSync } from 'node:fs'
import { dirname } from 'node:path'
import type { Logger } from '../telemetry/index.ts'
import type { PublicCheckpointKey } from './chain-shapes.ts'
import { makeDirectories, readRegularFile, whyNotRead } from '../collections/index.ts'

/**
 * What the checkpoint key needs of a secrets store: the gateway hands its store in (secrets/ sits
 * beside audit/, not below it, so audit names only the few members it uses).
 */
export interface KeyStore {
  readonly kind: string
  readonly writable: boolean
  get(name: string, which?: 'current' | 'previous'): string | undefined
  /** Every version's value, newest first, where the store keeps them (the embedded one). */
  history?(name: string): string[]
  put(name: string, value: string): number
}

export const CHECKPOINT_KEY = 'bouncer.audit-checkpoint-key'

export type { PublicCheckpointKey } from './chain-shapes.ts'

export interface CheckpointKey {
  kid: string
  /** The private JWK (it crosses to the audit worker as plain data). */
  jwk: JsonWebKey
  publicKey: PublicCheckpointKey
  /** Where it is kept, for the log. */
  keptIn: string
}

/** A new key as the store or the key file keeps it. */
export function newCheckpointKey(): string {
  const { privateKey } = generateKeyPairSync('ed25519')
  return JSON.stringify({ jwk: privateKey.export({ format: 'jwk' }), createdAt: Date.now() })
}

/** RFC 7638: the SHA-256 of an OKP key's required members, in lexical order. */
function thumbprint(x: string): string {
  return createHash('sha256').update(JSON.stringify({ crv: 'Ed25519', kty: 'OKP', x })).digest('base64url')
}

type ParsedKey = { jwk: JsonWebKey; publicKey: PublicCheckpointKey }

function parseKey(serialized: string | undefined): ParsedKey | undefined {
  if (serialized === undefined) return undefined
  try {
    const { jwk } = JSON.parse(serialized) as { jwk: JsonWebKey }
    const exported = createPublicKey(createPrivateKey({ key: jwk as never, format: 'jwk' })).export({ format: 'jwk' })
    if (exported.crv !== 'Ed25519' || typeof exported.x !== 'string') return undefined
    return { jwk, publicKey: { kid: thumbprint(exported.x), kty: 'OKP', crv: 'Ed25519', x: exported.x } }
  } catch {
    return undefined
  }
}

/** Whether a secret's value is a checkpoint signing key (what `secrets put`/`rotate` may store under CHECKPOINT_KEY). */
export function isCheckpointKey(serialized: string): boolean {
  return parseKey(serialized) !== undefined
}

function keyed(parsed: ParsedKey, keptIn: string): CheckpointKey {
  return { kid: parsed.publicKey.kid, jwk: parsed.jwk, publicKey: parsed.publicKey, keptIn }
}

/**
 * The gateway's signing key: from a store that holds it or can keep it (made there on first use),
 * else from the key file (made on first use), else — the file cannot be written — in memory only.
 */
export function checkpointSigningKey(store: KeyStore | null, keyFile: string, logger: Logger): CheckpointKey {
  if (store) {
    const held = parseKey(store.get(CHECKPOINT_KEY))
    if (held) return keyed(held, `secret ${CHECKPOINT_KEY} of the ${store.kind} secrets store`)
    if (store.writable) {
      if (store.get(CHECKPOINT_KEY) !== undefined) logger.error(`secret ${CHECKPOINT_KEY} does not hold a checkpoint signing key: a new one replaces it`)
      store.put(CHECKPOINT_KEY, newCheckpointKey())
      return keyed(parseKey(store.get(CHECKPOINT_KEY)) as ParsedKey, `secret ${CHECKPOINT_KEY} of the ${store.kind} secrets store`)
    }
  }
  try {
    const existing = readKeyFile(keyFile)
    if (existing !== undefined) {
      const parsed = parseKey(existing)
      if (parsed) return keyed(parsed, keyFile)
      // Kept aside, not overwritten: it is evidence, and may still check older checkpoints.
      const aside = `${keyFile}.damaged-${Date.now()}`
      renameSync(keyFile, aside)
      logger.error({ key_file: keyFile, moved_to: aside }, 'the audit checkpoint key file does not hold a key: a new one replaces it')
    }
    const made = newCheckpointKey()
    makeDirectories(dirname(keyFile))
    writeFileSync(keyFile, made, { mode: 0o600, flag: 'wx' })
    return keyed(parseKey(made) as ParsedKey, keyFile)
  } catch (err) {
    logger.warn({ key_file: keyFile, err }, 'the audit checkpoint key cannot be kept in a file: it is kept in memory only, and checkpoints signed with it cannot be checked after a restart')
    return keyed(parseKey(newCheckpointKey()) as ParsedKey, 'memory')
  }
}

/** A key file holds one JWK of ~200 bytes. */
const MAX_KEY_FILE_BYTES = 64 * 1024

/** The key file's text; undefined when there is none. A pipe, a device or a large file is refused unread (as the master key file is). */
function readKeyFile(path: string): string | undefined {
  const read = readRegularFile(path, MAX_KEY_FILE_BYTES)
  if (read.ok) return read.bytes.toString('utf8')
  if (read.reason === 'error' && (read.error.code === 'ENOENT' || read.error.code === 'ENOTDIR')) return undefined
  throw new Error(`cannot read the checkpoint key file ${path}: ${whyNotRead(read, MAX_KEY_FILE_BYTES)}`)
}

/**
 * The signing key where the gateway already keeps it, for a writer other than the audit worker
 * (the change chains' writers, change-log.ts); null when there is none, or it cannot be read: that
 * writer then does not sign. Never made here: a command run as another user must not leave a key
 * the gateway would not find. Never throws: the change must be recorded, signed or not.
 */
export function existingSigningKey(store: KeyStore | null, keyFile: string): { kid: string; jwk: JsonWebKey } | null {
  let text: string | undefined
  try {
    text = store?.get(CHECKPOINT_KEY)
  } catch {
    // A store that cannot give it (a damaged value, a read that fails): the change is still
    // recorded, unanchored. Thrown, it ended the admin API's call after the revocation was made,
    // with a 500 and no record.
    text = undefined
  }
  if (text === undefined) {
    try {
      text = readKeyFile(keyFile)
    } catch {
      return null // not this user's to read
    }
  }
  const parsed = parseKey(text)
  return parsed ? { kid: parsed.publicKey.kid, jwk: parsed.jwk } : null
}

/**
 * The public keys `bouncer audit verify` trusts, by kid: every key the store has held (the embedded
 * store keeps each version; a chain that ended two rotations ago was signed by none of the last two,
 * and failed --strict for good), else its current and previous key, and the key file's. `unreadable`: a key file that cannot be read (an auditor's, mode 0600 the gateway's) is
 * told there and passed over, as no key file, rather than failing.
 */
export function checkpointVerificationKeys(store: KeyStore | null, keyFile: string, unreadable?: (err: Error) => void): Map<string, KeyObject> {
  const keys = new Map<string, KeyObject>()
  const fileText = () => {
    try {
      return readKeyFile(keyFile)
    } catch (err) {
      if (!unreadable) throw err
      unreadable(err as Error)
      return undefined
    }
  }
  const held = store?.history ? store.history(CHECKPOINT_KEY) : [store?.get(CHECKPOINT_KEY), store?.get(CHECKPOINT_KEY, 'previous')]
  const texts = [...held, fileText()]
  for (const text of texts) {
    const parsed = parseKey(text)
    if (parsed) keys.set(parsed.publicKey.kid, createPublicKey({ key: { kty: 'OKP', crv: 'Ed25519', x: parsed.publicKey.x }, format: 'jwk' }))
  }
  return keys
}
