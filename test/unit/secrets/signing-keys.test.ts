// The identity assertion key and the token exchange key are one key ring (secrets/signing-keys.ts).
// The assertion's copy of it read any JWK as its key: one of another curve signed "ES256" assertions
// no upstream could verify. And a PEM key given for a key the gateway rotates is now rotated on
// schedule, its age counted from the store's version (the exchange's copy never rotated one; the
// assertion's replaced it at once).
import { createPublicKey, generateKeyPairSync, verify } from 'node:crypto'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterEach, expect, it } from 'vitest'
import { createExchangeKeys, EXCHANGE_KEY } from '../../../src/agents/index.ts'
import { isSigningKey, sharedKeyStore } from '../../../src/secrets/index.ts'
import { openFileStore } from '../../../src/secrets/providers/file.ts'
import { createLogger } from '../../../src/telemetry/logger.ts'
import { ASSERTION_KEY, createAssertionSigner } from '../../../src/upstream/index.ts'

const dirs: string[] = []
afterEach(() => {
  for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true })
})

const identity = { iss: 'https://idp.test', sub: 'alice', clientId: null, claims: {} } as never
const logger = createLogger({ level: 'silent' })
const headerOf = (jwt: string) => JSON.parse(Buffer.from(jwt.split('.')[0] as string, 'base64url').toString()) as { kid: string }

function privateKey(curve: string, format: 'pem' | 'jwk'): string {
  const key = generateKeyPairSync('ec', { namedCurve: curve }).privateKey
  return format === 'pem' ? (key.export({ format: 'pem', type: 'pkcs8' }) as string) : JSON.stringify({ jwk: key.export({ format: 'jwk' }), createdAt: Date.now() })
}

/** Does the assertion verify with the key the gateway publishes under its kid? */
function verifies(jwt: string, jwks: { keys: Array<Record<string, string>> }): boolean {
  const jwk = jwks.keys.find((key) => key.kid === headerOf(jwt).kid)
  if (!jwk) return false
  const [header, payload, signature] = jwt.split('.') as [string, string, string]
  return verify('sha256', Buffer.from(`${header}.${payload}`), { key: createPublicKey({ key: jwk as never, format: 'jwk' }), dsaEncoding: 'ieee-p1363' }, Buffer.from(signature, 'base64url'))
}

it('an assertion key of another curve in a read-only store is not signed with', () => {
  const dir = mkdtempSync(join(tmpdir(), 'bouncer-ring-'))
  dirs.push(dir)
  writeFileSync(join(dir, ASSERTION_KEY), privateKey('P-384', 'jwk'))
  expect(isSigningKey(privateKey('P-384', 'jwk'))).toBe(false)
  const signer = createAssertionSigner({ issuer: 'https://gateway.test', ttlMs: 60_000, rotateEveryMs: 3_600_000, store: openFileStore(dir), fallback: null, logger })
  const jwt = signer.assertion('up', identity, [])
  expect(signer.jwks().keys.map((key) => key.crv)).toEqual(['P-256'])
  expect(verifies(jwt, signer.jwks())).toBe(true)
})

it('a PEM key given for the assertion key signs, and is rotated once it is older than rotate_every', () => {
  let clock = Date.now()
  const store = sharedKeyStore()
  const pem = privateKey('P-256', 'pem')
  expect(isSigningKey(pem)).toBe(true)
  store.put(ASSERTION_KEY, pem)
  const signer = createAssertionSigner({ issuer: 'https://gateway.test', ttlMs: 60_000, rotateEveryMs: 3_600_000, publishAheadMs: 0, store, fallback: null, logger, now: () => clock })
  const first = signer.assertion('up', identity, [])
  expect(store.get(ASSERTION_KEY)).toBe(pem) // kept, not replaced as "not a key"
  expect(verifies(first, signer.jwks())).toBe(true)

  expect(signer.rotateIfDue(true)).toBe(false)
  clock += 3_700_000
  expect(signer.rotateIfDue(true)).toBe(true)
  const next = signer.assertion('up', identity, [])
  expect(headerOf(next).kid).not.toBe(headerOf(first).kid)
  expect(verifies(next, signer.jwks())).toBe(true)
  expect(verifies(first, signer.jwks())).toBe(true) // the PEM key stays published while its assertions live
})

it('a PEM key given for the exchange key the gateway makes is rotated on schedule too', () => {
  let clock = Date.now()
  const store = sharedKeyStore()
  store.put(EXCHANGE_KEY, privateKey('P-256', 'pem'))
  const keys = createExchangeKeys({ secretName: null, rotateEveryMs: 3_600_000, retainMs: 60_000, publishAheadMs: 0, store, fallback: null, logger, now: () => clock })
  const first = headerOf(keys.sign({ sub: 'agent' })).kid
  expect(keys.refresh(true)).toBe(false)
  clock += 3_700_000
  expect(keys.refresh(true)).toBe(true)
  expect(headerOf(keys.sign({ sub: 'agent' })).kid).not.toBe(first)
  expect(keys.publicKey(first)).toBeDefined()
})
