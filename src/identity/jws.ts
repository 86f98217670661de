// The compact JWS a bearer token is (RFC 7515 §7.1): decoding it with bounded work, and verifying
// its signature (RFC 7518 §3) with node:crypto, synchronously.
//
// Decoding reads a token whose signature nobody has checked yet, so it is linear in the token's
// length whatever the token holds (bench/hostile-tokens.ts measures the shapes that were not).
//
// Measured on the hot path (bench/identity.ts): jose v6 verifies through WebCrypto, which hops to
// the libuv thread pool and back: RS256 89 µs and ES256 169 µs of CPU per token, against 22 µs and
// 117 µs for node:crypto.verify on the same keys. jose still selects the key (JWKS, kid, key type);
// this file only checks that the key fits the algorithm exactly and that the signature verifies.
import { constants, createPublicKey, KeyObject, verify } from 'node:crypto'
import type { JWK, JWTPayload, JWTVerifyGetKey, ProtectedHeaderParameters } from 'jose'

/** Whatever jose's key set hands out. */
export type IssuerKey = Awaited<ReturnType<JWTVerifyGetKey>>

interface AlgorithmSpec {
  hash: string | null
  keyTypes: readonly string[]
  /** ECDSA: the curve, and the raw r‖s signature length (JWS uses IEEE P1363, not DER). */
  curve?: string
  signatureBytes?: number
  /** RSASSA-PSS: salt length = hash length (RFC 7518 §3.5). */
  pssSaltBytes?: number
}

const ALGORITHMS: Readonly<Record<string, AlgorithmSpec>> = {
  RS256: { hash: 'sha256', keyTypes: ['rsa'] },
  RS384: { hash: 'sha384', keyTypes: ['rsa'] },
  RS512: { hash: 'sha512', keyTypes: ['rsa'] },
  PS256: { hash: 'sha256', keyTypes: ['rsa', 'rsa-pss'], pssSaltBytes: 32 },
  PS384: { hash: 'sha384', keyTypes: ['rsa', 'rsa-pss'], pssSaltBytes: 48 },
  PS512: { hash: 'sha512', keyTypes: ['rsa', 'rsa-pss'], pssSaltBytes: 64 },
  ES256: { hash: 'sha256', keyTypes: ['ec'], curve: 'prime256v1', signatureBytes: 64 },
  ES384: { hash: 'sha384', keyTypes: ['ec'], curve: 'secp384r1', signatureBytes: 96 },
  ES512: { hash: 'sha512', keyTypes: ['ec'], curve: 'secp521r1', signatureBytes: 132 },
  EdDSA: { hash: null, keyTypes: ['ed25519'] },
  Ed25519: { hash: null, keyTypes: ['ed25519'] },
}

/** RSA keys shorter than this are refused, as jose does (RFC 7518 §3.3: 2048 bits or larger). */
const MIN_RSA_BITS = 2048
const BASE64URL = /^[A-Za-z0-9_-]*$/

/**
 * Deeper JSON is refused before it is parsed: real headers and claims nest 3 or 4 levels
 * (Keycloak's `resource_access.CLIENT.roles`), while JSON.parse of 24,000 nested arrays (one 64 KB
 * token) took 5 ms, 8 times flat JSON of the same size, and String() of one overflows the stack.
 */
export const MAX_JSON_DEPTH = 32

export interface DecodedJwt {
  header: ProtectedHeaderParameters
  claims: JWTPayload
  /** The first part as sent: what jose's key selection reads. */
  encodedHeader: string
  /** `header.payload`, what the signature signs. */
  signingInput: string
  signature: string
}

const strictUtf8 = new TextDecoder('utf-8', { fatal: true })

/**
 * RFC 7519 §7.2 steps 1–10 for a JWS: exactly three parts (a token of 32,000 segments is refused
 * at its third dot, not split), the first two base64url JSON objects. Undefined for anything else.
 */
export function decodeCompactJwt(token: string): DecodedJwt | undefined {
  const first = token.indexOf('.')
  const second = first === -1 ? -1 : token.indexOf('.', first + 1)
  if (second === -1 || token.indexOf('.', second + 1) !== -1) return undefined
  const encodedHeader = token.slice(0, first)
  const header = jsonObjectOf(encodedHeader)
  const claims = header && jsonObjectOf(token.slice(first + 1, second))
  if (!header || !claims) return undefined
  return { header, claims, encodedHeader, signingInput: token.slice(0, second), signature: token.slice(second + 1) }
}

/** A base64url (no padding, RFC 7515 §2) UTF-8 JSON object, or undefined. */
function jsonObjectOf(part: string): Record<string, unknown> | undefined {
  if (part === '' || part.length % 4 === 1 || !BASE64URL.test(part)) return undefined
  let text: string
  try {
    text = strictUtf8.decode(Buffer.from(part, 'base64url'))
  } catch {
    return undefined
  }
  if (nestsDeeperThan(text, MAX_JSON_DEPTH)) return undefined
  let value: unknown
  try {
    value = JSON.parse(text)
  } catch {
    return undefined
  }
  return typeof value === 'object' && value !== null && !Array.isArray(value) ? (value as Record<string, unknown>) : undefined
}

/** Whether a JSON value nests deeper than a token's claims may (MAX_JSON_DEPTH): such a token is refused as malformed. */
export function nestsTooDeep(json: string): boolean {
  return nestsDeeperThan(json, MAX_JSON_DEPTH)
}

/**
 * nestsTooDeep for a value already parsed (claims written by hand): walked with a stack of its
 * own, as JSON.stringify recurses and a value 20,000 deep threw RangeError (a probe: POST
 * /api/explain answered 500 internal_error, `bouncer explain --claims` "internal error").
 */
export function valueNestsTooDeep(value: unknown): boolean {
  const pending: Array<{ value: unknown; depth: number }> = [{ value, depth: 0 }]
  for (let next = pending.pop(); next !== undefined; next = pending.pop()) {
    if (typeof next.value !== 'object' || next.value === null) continue
    const depth = next.depth + 1
    if (depth > MAX_JSON_DEPTH) return true
    for (const child of Object.values(next.value)) pending.push({ value: child, depth })
  }
  return false
}

/** One pass over JSON text; strings are skipped with indexOf (their brackets do not count). */
function nestsDeeperThan(json: string, maxDepth: number): boolean {
  let depth = 0
  for (let i = 0; i < json.length; i++) {
    const c = json.charCodeAt(i)
    if (c === 0x22) i = closingQuote(json, i)
    else if (c === 0x5b || c === 0x7b) {
      if (++depth > maxDepth) return true
    } else if (c === 0x5d || c === 0x7d) depth--
  }
  return false
}

/** Where the string opened at `open` ends (the text's length when it does not). */
function closingQuote(json: string, open: number): number {
  let at = json.indexOf('"', open + 1)
  while (at !== -1 && isEscaped(json, at)) at = json.indexOf('"', at + 1)
  return at === -1 ? json.length : at
}

/** An odd run of backslashes before `at` (each backslash is looked at once: linear overall). */
function isEscaped(json: string, at: number): boolean {
  let backslashes = 0
  while (json.charCodeAt(at - 1 - backslashes) === 0x5c) backslashes++
  return backslashes % 2 === 1
}

/** Does `signature` (base64url) sign `signingInput` (`header.payload`) under `alg` with `key`? */
export function verifySignature(alg: string, key: KeyObject, signingInput: string, signature: string): boolean {
  const spec = ALGORITHMS[alg]
  if (!spec || key.type !== 'public' || !BASE64URL.test(signature)) return false
  const keyType = key.asymmetricKeyType ?? ''
  if (!spec.keyTypes.includes(keyType)) return false
  const details = key.asymmetricKeyDetails
  if (spec.curve !== undefined && details?.namedCurve !== spec.curve) return false
  if ((keyType === 'rsa' || keyType === 'rsa-pss') && (details?.modulusLength ?? 0) < MIN_RSA_BITS) return false
  const bytes = Buffer.from(signature, 'base64url')
  // One signature, one spelling: a last character whose unused low bits are set decodes to the
  // same bytes (found by fuzzing), which would let one token be written several ways.
  if (bytes.toString('base64url') !== signature) return false
  if (spec.signatureBytes !== undefined && bytes.length !== spec.signatureBytes) return false
  const input = Buffer.from(signingInput, 'latin1')
  if (spec.signatureBytes !== undefined) return verify(spec.hash, input, { key, dsaEncoding: 'ieee-p1363' }, bytes)
  if (spec.pssSaltBytes !== undefined) {
    return verify(spec.hash, input, { key, padding: constants.RSA_PKCS1_PSS_PADDING, saltLength: spec.pssSaltBytes }, bytes)
  }
  return verify(spec.hash, input, key, bytes)
}

const keyObjects = new WeakMap<object, KeyObject>()

/** jose hands out WebCrypto keys; node:crypto wants KeyObjects (converted once per key). */
export function toKeyObject(key: IssuerKey): KeyObject {
  if (key instanceof KeyObject) return key
  if (key instanceof Uint8Array) throw new TypeError('a symmetric key is never used to verify issuer tokens')
  let object = keyObjects.get(key)
  if (!object) {
    object = 'kty' in key ? createPublicKey({ key: key as JWK as never, format: 'jwk' }) : KeyObject.from(key as never)
    keyObjects.set(key, object)
  }
  return object
}
