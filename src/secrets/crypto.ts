// Envelope encryption for the embedded store: each value is sealed with AES-256-GCM under a data key;
// the data key is sealed under the master key. The additional data binds a ciphertext to its place
// (which secret, which version), so a row edited or moved to another secret fails authentication
// instead of decrypting into garbage.
import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto'
import { readRegularFile } from '../collections/index.ts'
import { redactValues } from '../telemetry/index.ts'

/** A sealed value starts with its IV: random, so it tells one seal from another. */
export const IV_BYTES = 12
const TAG_BYTES = 16

export class SecretsError extends Error {}
/** An embedded store opened only if it is there (`existing`), and it is not. */
export class SecretStoreMissing extends SecretsError {}
/**
 * A write the store's file refused (another process's lock, a full disk, a trigger): the store's
 * trouble, said with its file, but no fault of the config (a reload that needed the write failed,
 * it was not refused as invalid).
 */
export class SecretStoreWriteFailed extends SecretsError {}

export function seal(key: Buffer, plaintext: Buffer, aad: string): Buffer {
  const iv = randomBytes(IV_BYTES)
  const cipher = createCipheriv('aes-256-gcm', key, iv)
  cipher.setAAD(Buffer.from(aad))
  const body = Buffer.concat([cipher.update(plaintext), cipher.final()])
  return Buffer.concat([iv, cipher.getAuthTag(), body])
}

/** Throws SecretsError when the key is wrong or the sealed bytes were changed. */
export function open(key: Buffer, sealed: Buffer, aad: string, what: string): Buffer {
  if (sealed.length < IV_BYTES + TAG_BYTES) throw new SecretsError(`${what} is damaged (too short)`)
  const decipher = createDecipheriv('aes-256-gcm', key, sealed.subarray(0, IV_BYTES))
  decipher.setAAD(Buffer.from(aad))
  decipher.setAuthTag(sealed.subarray(IV_BYTES, IV_BYTES + TAG_BYTES))
  try {
    return Buffer.concat([decipher.update(sealed.subarray(IV_BYTES + TAG_BYTES)), decipher.final()])
  } catch {
    throw new SecretsError(`${what} does not authenticate: the master key is wrong, or the store was tampered with`)
  }
}

/** More than a key file holds (44 characters of base64 or 64 of hex, and a newline). */
const MAX_KEY_FILE_BYTES = 4096

/**
 * A master key file's text, read only if it is a regular file of a key file's size: `file:/dev/zero`
 * was read until `bouncer check` (and the gateway, at a start or a reload) ran out of memory (found
 * by an adversarial probe). A named pipe a program feeds (a secrets agent) is read as a file is,
 * its writer waited for, its text bounded as a key file's size is.
 */
function readKeyFile(path: string): string {
  const unreadable = (why: string) => new SecretsError(`the master key is missing: cannot read ${path} (${why})`)
  const read = readRegularFile(path, MAX_KEY_FILE_BYTES, { pipes: 'read' })
  if (read.ok) return read.bytes.toString('utf8')
  if (read.reason === 'directory') throw unreadable('EISDIR')
  if (read.reason === 'not regular') throw unreadable('it is not a regular file: a device or a socket')
  if (read.reason === 'too large') throw new SecretsError(`the master key file ${path} holds ${read.size.toLocaleString('en')} bytes: it holds one key, 32 random bytes written as base64 or hex`)
  throw unreadable(read.error.code ?? read.error.message)
}

/**
 * The master key from `env:NAME` or `file:PATH`: 32 random bytes written as base64, base64url or
 * hex (e.g. `openssl rand -base64 32`).
 */
export function masterKeyFrom(reference: string, env: NodeJS.ProcessEnv = process.env): Buffer {
  let text: string
  if (reference.startsWith('env:')) {
    const name = reference.slice(4)
    const value = env[name]
    if (value === undefined || value === '') throw new SecretsError(`the master key is missing: environment variable ${name} is not set`)
    text = value
  } else {
    text = readKeyFile(reference.slice(5))
  }
  const trimmed = text.trim()
  const key = /^[0-9a-fA-F]{64}$/.test(trimmed) ? Buffer.from(trimmed, 'hex') : Buffer.from(trimmed, 'base64')
  if (key.length !== 32 || !/^[A-Za-z0-9+/_=-]+$/.test(trimmed)) {
    throw new SecretsError('the master key must be 32 random bytes, written as base64 or hex (e.g. openssl rand -base64 32)')
  }
  // Scrubbed from every log line as a secret value is: it opens them all.
  redactValues([trimmed])
  return key
}
