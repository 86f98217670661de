// The paging cursor: where the last page stopped (its key columns' values), for which dataset and
// which parameters, sealed (AES-256-GCM) under a key derived from the datasource's key. A cursor
// someone altered, or one taken to another dataset or to other parameters, is refused (400
// invalid_parameter): it could otherwise page through rows the parameters were meant to select
// out. Sealed, not only signed: the key columns' values may be masked for the caller (a hashed id),
// and a cursor readable as base64 JSON would hand them out.
import { createCipheriv, createDecipheriv, createHash, hkdfSync, randomBytes } from 'node:crypto'
import { invalidParameter, type ParamValue } from './params.ts'

const IV_BYTES = 12
const TAG_BYTES = 16

/**
 * A key column's value as the cursor keeps it: numbers as numbers, an integer beyond 2^53 as a
 * bigint, bytes as bytes, the rest as text (keyValue in backend.ts).
 */
export type KeyValue = string | number | bigint | Buffer

export interface PagePosition {
  /** The key columns' values of the last row sent. */
  after: KeyValue[]
  /**
   * The date and timestamp parameters' values the first page was read with, bound again by the next: `-12h` or `now`
   * resolved anew on each page made another scope every time, and no cursor was taken back (found by
   * a probe). Absent in a cursor issued before they were kept.
   */
  params?: Array<[string, ParamValue]>
}

export function signCursor(position: PagePosition, scope: string, key: Buffer): string {
  const iv = randomBytes(IV_BYTES)
  const cipher = createCipheriv('aes-256-gcm', sealingKey(key), iv)
  const sealed = Buffer.concat([iv, cipher.update(JSON.stringify({ a: position.after.map(keepNonFinite), s: scopeDigest(scope), ...(position.params ? { p: position.params } : {}) }), 'utf8'), cipher.final(), cipher.getAuthTag()])
  return sealed.toString('base64url')
}

export function verifyCursor(cursor: string, scope: string, key: Buffer): PagePosition {
  const sealed = Buffer.from(cursor, 'base64url')
  let decoded: { a?: unknown; s?: unknown; p?: unknown }
  try {
    if (sealed.length < IV_BYTES + TAG_BYTES) throw new Error('too short')
    const decipher = createDecipheriv('aes-256-gcm', sealingKey(key), sealed.subarray(0, IV_BYTES))
    decipher.setAuthTag(sealed.subarray(sealed.length - TAG_BYTES))
    const text = Buffer.concat([decipher.update(sealed.subarray(IV_BYTES, sealed.length - TAG_BYTES)), decipher.final()]).toString('utf8')
    decoded = JSON.parse(text) as { a?: unknown; s?: unknown; p?: unknown }
  } catch {
    throw invalidParameter('cursor', 'not a cursor this gateway issued (altered, or sealed with another key)')
  }
  if (decoded.s !== scopeDigest(scope)) throw invalidParameter('cursor', 'issued for other parameters, another dataset, another caller or before the dataset\'s paging key changed: page with the same parameters, as the same caller, or start again without a cursor')
  const after = Array.isArray(decoded.a) ? decoded.a.map(restoreNonFinite) : null
  if (after === null || !after.every((v) => typeof v === 'string' || typeof v === 'number' || typeof v === 'bigint' || Buffer.isBuffer(v))) throw invalidParameter('cursor', 'not a cursor this gateway issued')
  const params = Array.isArray(decoded.p) && decoded.p.every((pair) => Array.isArray(pair) && pair.length === 2 && typeof pair[0] === 'string') ? (decoded.p as Array<[string, ParamValue]>) : undefined
  return { after: after as KeyValue[], ...(params ? { params } : {}) }
}

/**
 * The scope sealed as its digest: the scope holds the parameters' text and what the statement binds
 * from the caller (a claim may be a list of hundreds of groups), and whole it made the next page's
 * cursor as long, twice over in the URL with the parameters.
 */
function scopeDigest(scope: string): string {
  return createHash('sha256').update(scope).digest('base64url')
}

/**
 * JSON has no Infinity or NaN: a float key holding one was sealed as null, and the cursor handed out
 * was then refused as not the gateway's (found by a probe), a dead end before the rest of the rows.
 * Such a number travels as `{"n": "Infinity"}` and comes back a number: SQLite compares a number with
 * a REAL column as a number, but text as greater than every number. An integer beyond 2^53 travels
 * as `{"i": "…"}` and comes back a bigint, for the same reason; bytes as `{"x": "<hex>"}`, back as
 * bytes: SQLite compares a BLOB as greater than any text.
 */
function keepNonFinite(value: KeyValue): string | number | { n: string } | { i: string } | { x: string } {
  if (typeof value === 'bigint') return { i: String(value) }
  if (Buffer.isBuffer(value)) return { x: value.toString('hex') }
  return typeof value === 'number' && !Number.isFinite(value) ? { n: String(value) } : value
}

const NON_FINITE: ReadonlyMap<unknown, number> = new Map([['Infinity', Infinity], ['-Infinity', -Infinity], ['NaN', NaN]])

function restoreNonFinite(value: unknown): unknown {
  if (typeof value !== 'object' || value === null) return value
  if ('x' in value) return typeof value.x === 'string' && /^(?:[0-9a-f]{2})*$/.test(value.x) ? Buffer.from(value.x, 'hex') : value
  if ('i' in value) return typeof value.i === 'string' && /^-?\d+$/.test(value.i) ? BigInt(value.i) : value
  if (!('n' in value)) return value
  return NON_FINITE.get(value.n) ?? value
}

/**
 * The datasource key is also the masks' HMAC key: the cursors' cipher gets a key of its own from it,
 * by HKDF. It was HMAC(key, 'bouncer-cursor-sealing'), which is what a hash mask shows of a cell
 * holding that text: anyone who could write such a cell read half the cipher's key off a masked
 * answer (found by an adversarial probe). No mask computes HKDF's expand step.
 */
const sealingKeys = new WeakMap<Buffer, Buffer>()
function sealingKey(key: Buffer): Buffer {
  let sealing = sealingKeys.get(key)
  if (sealing === undefined) sealingKeys.set(key, (sealing = Buffer.from(hkdfSync('sha256', key, 'bouncer-cursor', 'sealing', 32))))
  return sealing
}
