// The token exchange's signing keys: kept where the config says, published while any token they
// signed may still be presented, rotated by the gateway (its own key) or by whoever writes the
// secret (an operator's PEM key).
import { generateKeyPairSync, verify } from 'node:crypto'
import { describe, expect, it } from 'vitest'
import { createExchangeKeys, EXCHANGE_KEY } from '../../../src/agents/index.ts'
import { SigningKeyError } from '../../../src/secrets/index.ts'
import { sharedKeyStore, type SecretStore } from '../../../src/secrets/index.ts'
import { createLogger } from '../../../src/telemetry/logger.ts'

const logger = createLogger({ level: 'silent' })

/** A store keeping versions in memory, as the embedded store does (current and previous, a marker per put). */
function memoryStore(writable: boolean, initial: Record<string, string> = {}): SecretStore {
  const versions = new Map<string, string[]>(Object.entries(initial).map(([name, value]) => [name, [value]]))
  return {
    kind: writable ? 'embedded' : 'file',
    writable,
    get: (name, which = 'current') => {
      const list = versions.get(name) ?? []
      return which === 'current' ? list.at(-1) : list.at(-2)
    },
    notFound: () => 'not here',
    marker: (name) => String(versions.get(name)?.length ?? 0),
    list: () => [...versions.keys()],
    versions: () => [],
    put: (name, value) => {
      const list = versions.get(name) ?? []
      list.push(value)
      versions.set(name, list)
      return list.length
    },
    delete: () => false,
    close() {},
  }
}

function pem(curve = 'P-256'): string {
  return generateKeyPairSync('ec', { namedCurve: curve }).privateKey.export({ format: 'pem', type: 'pkcs8' }) as string
}

function verifies(keys: ReturnType<typeof createExchangeKeys>, token: string): boolean {
  const [header, payload, signature] = token.split('.') as [string, string, string]
  const { kid } = JSON.parse(Buffer.from(header, 'base64url').toString()) as { kid: string }
  const key = keys.publicKey(kid)
  return key !== undefined && verify('sha256', Buffer.from(`${header}.${payload}`), { key, dsaEncoding: 'ieee-p1363' }, Buffer.from(signature, 'base64url'))
}

describe('the token exchange signing keys', () => {
  it('makes its own key in a writable store, and keeps it there across restarts', () => {
    const store = memoryStore(true)
    const first = createExchangeKeys({ secretName: null, rotateEveryMs: 86_400_000, retainMs: 60_000, store, logger })
    expect(first.keptIn).toBe(`secret ${EXCHANGE_KEY} of the embedded secrets store`)
    const token = first.sign({ sub: 'alice' })
    const again = createExchangeKeys({ secretName: null, rotateEveryMs: 86_400_000, retainMs: 60_000, store, logger })
    expect(again.jwks()).toEqual(first.jwks())
    expect(verifies(again, token)).toBe(true)
  })

  it('rotates its own key when due, publishing the old one while its tokens may live', () => {
    let now = Date.now()
    const keys = createExchangeKeys({ secretName: null, rotateEveryMs: 1_000, retainMs: 60_000, store: null, logger, now: () => now })
    expect(keys.keptIn).toBe('memory')
    const before = keys.sign({ sub: 'alice' })
    expect(keys.refresh()).toBe(false)
    now = Date.now() + 2_000 // the key was made at Date.now(): two seconds past it
    expect(keys.refresh()).toBe(true)
    expect(keys.jwks().keys).toHaveLength(2)
    expect(verifies(keys, before)).toBe(true)
    const after = keys.sign({ sub: 'alice' })
    expect(after.split('.')[0]).not.toBe(before.split('.')[0]) // another kid
  })

  it('keeps the keys of the config a reload replaced published while their tokens may live, and no longer', () => {
    let now = Date.now()
    const store = memoryStore(false, { 'sts-signing-key': pem() })
    const own = createExchangeKeys({ secretName: null, rotateEveryMs: 86_400_000, retainMs: 60_000, store: null, logger, now: () => now })
    const before = own.sign({ sub: 'alice' })
    const operators = createExchangeKeys({ secretName: 'sts-signing-key', rotateEveryMs: 86_400_000, retainMs: 60_000, store, logger, now: () => now, handover: own.handover() })
    expect(operators.jwks().keys).toHaveLength(2)
    expect(verifies(operators, before)).toBe(true)
    expect(verifies(operators, operators.sign({ sub: 'alice' }))).toBe(true)
    now += 60_001 // the old key's last token has expired
    expect(operators.jwks().keys).toHaveLength(1)
    expect(verifies(operators, before)).toBe(false)
  })

  it('signs with an operator\'s PEM key from the named secret, and follows a new version of it', () => {
    const store = memoryStore(true, { 'sts-signing-key': pem() })
    const keys = createExchangeKeys({ secretName: 'sts-signing-key', rotateEveryMs: 1, retainMs: 60_000, store, logger })
    const before = keys.sign({ sub: 'alice' })
    expect(keys.refresh()).toBe(false) // an operator's key is never replaced here
    store.put('sts-signing-key', pem())
    expect(keys.refresh()).toBe(true)
    expect(keys.jwks().keys).toHaveLength(2) // the new one, and the previous version
    expect(verifies(keys, before)).toBe(true)
    expect(verifies(keys, keys.sign({ sub: 'alice' }))).toBe(true)
  })

  it('refuses a secret that is not an EC P-256 private key, and never overwrites it', () => {
    const rsa = generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey.export({ format: 'pem', type: 'pkcs8' }) as string
    for (const value of [rsa, pem('P-384'), 'not a key']) {
      const store = memoryStore(true, { 'sts-signing-key': value })
      expect(() => createExchangeKeys({ secretName: 'sts-signing-key', rotateEveryMs: 1, retainMs: 1, store, logger })).toThrow(SigningKeyError)
      expect(store.get('sts-signing-key')).toBe(value)
    }
  })

  it('shares the key a read-only store holds, and keeps to memory when the store has none', () => {
    const made = memoryStore(true)
    createExchangeKeys({ secretName: null, rotateEveryMs: 1, retainMs: 1, store: made, logger })
    const shared = memoryStore(false, { [EXCHANGE_KEY]: made.get(EXCHANGE_KEY) as string })
    const a = createExchangeKeys({ secretName: null, rotateEveryMs: 1, retainMs: 1, store: shared, logger })
    const b = createExchangeKeys({ secretName: null, rotateEveryMs: 1, retainMs: 1, store: shared, logger })
    expect(a.jwks()).toEqual(b.jwks())
    expect(a.refresh()).toBe(false) // whoever writes the shared key rotates it
    expect(createExchangeKeys({ secretName: null, rotateEveryMs: 1, retainMs: 1, store: memoryStore(false), logger }).keptIn).toBe('memory')
  })

  it('with no store to keep it, keeps its key in the process\'s key store: every worker signs and verifies with one key', () => {
    let now = Date.now() // a key made records the wall clock's time
    const processKeys = sharedKeyStore()
    const options = { secretName: null, rotateEveryMs: 60_000, retainMs: 600_000, store: null, fallback: processKeys, logger, now: () => now }
    const w1 = createExchangeKeys(options)
    const w2 = createExchangeKeys(options)
    expect(w1.keptIn).toBe('memory')
    expect(w1.jwks()).toEqual(w2.jwks())
    expect(verifies(w2, w1.sign({ sub: 'alice' }))).toBe(true)
    // One worker rotates; the other knows the new key at its first token, before its own refresh.
    now += 120_000
    expect(w2.refresh(false)).toBe(false) // due, but with server.workers only the first worker rotates
    expect(w1.refresh()).toBe(true)
    const rotated = w1.sign({ sub: 'alice' })
    expect(verifies(w2, rotated)).toBe(true)
    expect(w2.jwks()).toEqual(w1.jwks())
    // A made-up kid reads the store again at most once a second.
    let reads = 0
    const counted = { ...processKeys, marker: (name: string) => (reads++, processKeys.marker(name)) }
    const w3 = createExchangeKeys({ ...options, fallback: counted })
    reads = 0
    for (let i = 0; i < 50; i++) expect(w3.publicKey(`made-up-${i}`)).toBeUndefined()
    expect(reads).toBe(1)
  })
})
