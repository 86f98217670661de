// The provider's tokens kept with a session (the refresh token, and the ID token for the sign-out's
// id_token_hint) are sealed with AES-256-GCM under a key derived from the session's cookie value,
// which the store never holds (it holds the cookie's hash). A copy of the store, a Redis dump or
// the SQLite file, then yields neither a usable cookie nor a usable refresh token.
import { createCipheriv, createDecipheriv, hkdfSync, randomBytes } from 'node:crypto'

export interface SessionTokens {
  idToken: string | null
  refreshToken: string | null
}

function keyOf(cookieValue: string): Buffer {
  return Buffer.from(hkdfSync('sha256', Buffer.from(cookieValue, 'utf8'), Buffer.alloc(0), 'bouncer session tokens', 32))
}

export function sealTokens(tokens: SessionTokens, cookieValue: string): string | null {
  if (tokens.idToken === null && tokens.refreshToken === null) return null
  return sealJson(tokens, keyOf(cookieValue))
}

/** The tokens, or null when there are none or they do not open with this cookie. */
export function openTokens(sealed: string | null, cookieValue: string): SessionTokens | null {
  return sealed === null ? null : openJson<SessionTokens>(sealed, keyOf(cookieValue))
}

/** A value as JSON sealed with AES-256-GCM: iv (12 bytes), tag (16), ciphertext, as base64url. */
export function sealJson(value: unknown, key: Buffer): string {
  const iv = randomBytes(12)
  const cipher = createCipheriv('aes-256-gcm', key, iv)
  const body = Buffer.concat([cipher.update(JSON.stringify(value), 'utf8'), cipher.final()])
  return Buffer.concat([iv, cipher.getAuthTag(), body]).toString('base64url')
}

/** What sealJson sealed, or null when it does not open with this key (altered, another key's, garbage). */
export function openJson<T>(sealed: string, key: Buffer): T | null {
  try {
    const bytes = Buffer.from(sealed, 'base64url')
    if (bytes.length < 28) return null
    const decipher = createDecipheriv('aes-256-gcm', key, bytes.subarray(0, 12))
    decipher.setAuthTag(bytes.subarray(12, 28))
    return JSON.parse(Buffer.concat([decipher.update(bytes.subarray(28)), decipher.final()]).toString('utf8')) as T
  } catch {
    return null
  }
}
