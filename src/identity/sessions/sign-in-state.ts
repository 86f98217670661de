// A sign-in under way (its state, nonce, PKCE verifier, the path to come back to, and its end)
// travels in the browser's state cookie, sealed with AES-256-GCM, and nowhere else. It was a
// record in the session store, and every page load without a session begins a sign-in: anyone
// could grow Redis, the SQLite file or the heap by loading pages with long paths (an adversarial
// probe: 10,000 page loads, +26 MB of Redis, +44 MB of SQLite, +24 MB of heap). Now nothing is
// written server-side before a callback succeeds.
//
// The key is made once and kept in the session store (SessionStore.signInKey), so every instance
// and worker sharing the store opens a cookie another sealed; HKDF gives each sign-in (the
// gateway's, the console's) and client its own key, so one's cookie is nothing to the other.
import { hkdfSync } from 'node:crypto'
import { openJson, sealJson } from './seal.ts'

export interface PendingSignIn {
  readonly state: string
  readonly nonce: string
  readonly codeVerifier: string
  /** A path on this gateway, checked when the sign-in began. */
  readonly returnTo: string
  /** Epoch ms: the sign-in's start + login_timeout. */
  readonly expiresAt: number
}

/** The sealed form's fields, short: the cookie is bounded by what browsers keep (4,096 bytes). */
interface Sealed {
  s: string
  n: string
  v: string
  r: string
  e: number
}

export function pendingKey(storeKey: Buffer, audience: string, clientId: string): Buffer {
  return Buffer.from(hkdfSync('sha256', storeKey, Buffer.alloc(0), `bouncer sign-in state\0${audience}\0${clientId}`, 32))
}

export function sealPending(pending: PendingSignIn, key: Buffer): string {
  return sealJson({ s: pending.state, n: pending.nonce, v: pending.codeVerifier, r: pending.returnTo, e: pending.expiresAt } satisfies Sealed, key)
}

/** The sign-in, or null when the value is not one this key sealed (tampered, another gateway's, garbage). */
export function openPending(sealed: string, key: Buffer): PendingSignIn | null {
  const fields = openJson<Sealed>(sealed, key)
  return fields === null ? null : { state: fields.s, nonce: fields.n, codeVerifier: fields.v, returnTo: fields.r, expiresAt: fields.e }
}
