// An API key: `bk_<id>_<secret>`, printed once by `bouncer keys create` and never stored.
//
// The id (8 random bytes, hex) names the key: it is looked up, listed, revoked and written in the
// audit record (as client_id). The secret is 32 random bytes (hex), and only its SHA-256 is kept.
// A fast hash is enough here, unlike for passwords: a slow KDF (bcrypt, scrypt, argon2) exists to
// make guessing a low-entropy secret costly, but 256 random bits cannot be guessed at any speed, so
// a stolen hash gives nothing back (SHA-256 has no known preimage attack), while a KDF would cost
// every request tens of milliseconds. The hashes are compared in constant time.
import { hash, randomBytes, timingSafeEqual } from 'node:crypto'
import { API_KEY_PREFIX } from '../../http/index.ts'

const ID_BYTES = 8
const SECRET_BYTES = 32
const KEY = new RegExp(`^${API_KEY_PREFIX}([0-9a-f]{${ID_BYTES * 2}})_([0-9a-f]{${SECRET_BYTES * 2}})$`)
/** An id alone, as `keys revoke` takes it (or with its prefix, `bk_<id>`). */
const ID = new RegExp(`^(?:${API_KEY_PREFIX})?([0-9a-f]{${ID_BYTES * 2}})$`)

export interface NewApiKey {
  readonly id: string
  /** The whole key, to show once. */
  readonly key: string
  /** SHA-256 of the secret, hex: what is stored. */
  readonly hash: string
}

export function newApiKey(): NewApiKey {
  const id = randomBytes(ID_BYTES).toString('hex')
  const secret = randomBytes(SECRET_BYTES).toString('hex')
  return { id, key: `${API_KEY_PREFIX}${id}_${secret}`, hash: secretHash(secret).toString('hex') }
}

/** The key's id and secret, or null when it is not of the form bk_<id>_<secret>. */
export function parseApiKey(text: string): { id: string; secret: string } | null {
  const match = KEY.exec(text)
  return match ? { id: match[1] as string, secret: match[2] as string } : null
}

/** The id in `bk_<id>`, `<id>` or a whole key; null otherwise. */
export function apiKeyId(text: string): string | null {
  return parseApiKey(text)?.id ?? ID.exec(text)?.[1] ?? null
}

export function secretHash(secret: string): Buffer {
  return hash('sha256', secret, 'buffer')
}

/** Whether a presented secret is the one whose hash is stored, in constant time (both are 32 bytes). */
export function secretMatches(secret: string, storedHash: Buffer): boolean {
  const presented = secretHash(secret)
  return presented.length === storedHash.length && timingSafeEqual(presented, storedHash)
}

/** A principal's name: what trust rules match as the subject, and what the audit log shows. */
export const PRINCIPAL_NAME = /^[A-Za-z0-9][A-Za-z0-9._:@-]{0,127}$/
