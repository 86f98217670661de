// The embedded store's encryption: a round trip, versions, and every way of tampering detected.
import { execFileSync, spawn } from 'node:child_process'
import { once } from 'node:events'
import { randomBytes } from 'node:crypto'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { DatabaseSync } from 'node:sqlite'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterEach, describe, expect, it } from 'vitest'
import { masterKeyFrom, SecretsError } from '../../../src/secrets/crypto.ts'
import { openEmbeddedStore } from '../../../src/secrets/embedded.ts'
import { openEnvStore } from '../../../src/secrets/providers/env.ts'
import { MAX_SECRET_FILE_BYTES, openFileStore } from '../../../src/secrets/providers/file.ts'

const dirs: string[] = []
afterEach(() => {
  for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true })
})

function freshStore() {
  const dir = mkdtempSync(join(tmpdir(), 'bouncer-secrets-'))
  dirs.push(dir)
  const path = join(dir, 'secrets.db')
  const key = randomBytes(32)
  return { path, key, store: openEmbeddedStore(path, key) }
}

function tamper(path: string, sql: string, ...params: Array<string | number | Uint8Array>) {
  const db = new DatabaseSync(path)
  db.prepare(sql).run(...params)
  db.close()
}

describe('the embedded store', () => {
  it('round-trips a value, keeps versions, and labels current and previous', () => {
    const { store } = freshStore()
    expect(store.put('sales-api-token', 'v1-secret')).toBe(1)
    expect(store.put('sales-api-token', 'v2-secret')).toBe(2)
    expect(store.get('sales-api-token')).toBe('v2-secret')
    expect(store.get('sales-api-token', 'previous')).toBe('v1-secret')
    expect(store.versions('sales-api-token').map((v) => [v.version, v.label])).toEqual([[2, 'current'], [1, 'previous']])
    expect(store.list()).toEqual(['sales-api-token'])
    expect(store.marker('sales-api-token')).toMatch(/^2:/)
    expect(store.delete('sales-api-token')).toBe(true)
    expect(store.get('sales-api-token')).toBeUndefined()
    store.close()
  })

  it('stores only ciphertext', () => {
    const { path, store } = freshStore()
    store.put('token', 'plaintext-that-must-not-appear')
    store.close()
    const db = new DatabaseSync(path)
    const sealed = (db.prepare('SELECT sealed FROM secret_versions').get() as { sealed: Uint8Array }).sealed
    db.close()
    expect(Buffer.from(sealed).toString('latin1')).not.toContain('plaintext-that-must-not-appear')
  })

  it('refuses to open with the wrong master key, saying so', () => {
    const { path, store } = freshStore()
    store.put('token', 'value')
    store.close()
    expect(() => openEmbeddedStore(path, randomBytes(32))).toThrow(/the master key does not open the secrets store at .* \(wrong key\?\)/)
  })

  it('detects an edited ciphertext instead of decrypting garbage', () => {
    const { path, key, store } = freshStore()
    store.put('token', 'value-one')
    store.close()
    const db = new DatabaseSync(path)
    const sealed = Buffer.from((db.prepare('SELECT sealed FROM secret_versions').get() as { sealed: Uint8Array }).sealed)
    db.close()
    sealed.writeUInt8((sealed.at(-1) as number) ^ 0x01, sealed.length - 1)
    tamper(path, 'UPDATE secret_versions SET sealed = ?', sealed)
    expect(() => openEmbeddedStore(path, key).get('token')).toThrow(SecretsError)
  })

  it('detects a value moved to another secret or version', () => {
    const { path, key, store } = freshStore()
    store.put('a', 'value-of-a')
    store.put('b', 'value-of-b')
    store.close()
    tamper(path, "UPDATE secret_versions SET sealed = (SELECT sealed FROM secret_versions WHERE name = 'a') WHERE name = 'b'")
    expect(() => openEmbeddedStore(path, key).get('b')).toThrow(/does not authenticate/)
  })

  it('refuses names that could not be referenced', () => {
    const { store } = freshStore()
    expect(() => store.put('has space', 'x')).toThrow(/not a valid secret name/)
  })
})

describe('the master key', () => {
  const key = randomBytes(32)
  it.each([
    ['base64', key.toString('base64')],
    ['base64url', key.toString('base64url')],
    ['hex', key.toString('hex')],
    ['base64 with a newline', `${key.toString('base64')}\n`],
  ])('is read as %s', (_name, text) => {
    expect(masterKeyFrom('env:K', { K: text }).equals(key)).toBe(true)
  })

  it('is read from a named pipe a program feeds, up to a key file\'s size, and not from a larger file', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'bouncer-key-'))
    dirs.push(dir)
    const pipe = join(dir, 'key.pipe')
    execFileSync('mkfifo', [pipe])
    // A secrets agent writing the key into a pipe: read as a file is, its writer waited for.
    const feed = (text: string) => spawn('sh', ['-c', 'printf %s "$0" > "$1"', text, pipe], { stdio: 'ignore' })
    const fed = feed(key.toString('base64'))
    expect(masterKeyFrom(`file:${pipe}`).equals(key)).toBe(true)
    await once(fed, 'exit')
    const flood = feed('x'.repeat(10_000))
    expect(() => masterKeyFrom(`file:${pipe}`)).toThrow(/^the master key file .*key\.pipe holds \d[\d,]* bytes: it holds one key/)
    await once(flood, 'exit')
    const log = join(dir, 'app.log')
    writeFileSync(log, 'x'.repeat(10_000))
    expect(() => masterKeyFrom(`file:${log}`)).toThrow(`the master key file ${log} holds 10,000 bytes: it holds one key, 32 random bytes written as base64 or hex`)
  })

  it('is read from a file', () => {
    const dir = mkdtempSync(join(tmpdir(), 'bouncer-key-'))
    dirs.push(dir)
    writeFileSync(join(dir, 'key'), key.toString('base64'))
    expect(masterKeyFrom(`file:${join(dir, 'key')}`).equals(key)).toBe(true)
  })

  it.each([
    ['missing', 'env:NOPE', {}, /environment variable NOPE is not set/],
    ['too short', 'env:K', { K: randomBytes(16).toString('base64') }, /must be 32 random bytes/],
    ['a passphrase', 'env:K', { K: 'correct horse battery staple' }, /must be 32 random bytes/],
    ['an unreadable file', 'file:/nonexistent/key', {}, /cannot read \/nonexistent\/key/],
    // Read as it came, /dev/zero took the process past 20 GB of memory.
    ['a device', 'file:/dev/zero', {}, /^the master key is missing: cannot read \/dev\/zero \(it is not a regular file: a device or a socket\)$/],
  ])('is refused when %s', (_name, reference, env, message) => {
    expect(() => masterKeyFrom(reference, env)).toThrow(message)
  })
})

describe('read-only providers', () => {
  it('env: BOUNCER_SECRET_ + the name, upper-cased', () => {
    const store = openEnvStore('BOUNCER_SECRET_', { BOUNCER_SECRET_SALES_API_TOKEN: 'from-env' })
    expect(store.get('sales-api-token')).toBe('from-env')
    expect(store.get('other')).toBeUndefined()
    expect(() => store.put('x', 'y')).toThrow(/read-only/)
  })

  it('file: one file per secret, its change visible in the marker', () => {
    const dir = mkdtempSync(join(tmpdir(), 'bouncer-files-'))
    dirs.push(dir)
    writeFileSync(join(dir, 'sales-api-token'), 'from-file\n')
    const store = openFileStore(dir)
    expect(store.get('sales-api-token')).toBe('from-file')
    const before = store.marker('sales-api-token')
    writeFileSync(join(dir, 'sales-api-token'), 'rotated-file-value\n')
    expect(store.marker('sales-api-token')).not.toBe(before)
    expect(store.get('../etc/passwd')).toBeUndefined()
    expect(() => store.delete('sales-api-token')).toThrow(/read-only/)
  })

  it('file: a file over 1 MiB is refused unread, naming its size; one of exactly 1 MiB is read', () => {
    const dir = mkdtempSync(join(tmpdir(), 'bouncer-files-'))
    dirs.push(dir)
    writeFileSync(join(dir, 'mounted-by-mistake'), Buffer.alloc(MAX_SECRET_FILE_BYTES + 1, 'a'))
    writeFileSync(join(dir, 'bundle'), Buffer.alloc(MAX_SECRET_FILE_BYTES, 'b'))
    const store = openFileStore(dir)
    expect(() => store.get('mounted-by-mistake')).toThrow(`cannot read secret file ${join(dir, 'mounted-by-mistake')}: it holds 1,048,577 bytes, more than the 1,048,576 it may`)
    expect(store.get('bundle')).toHaveLength(MAX_SECRET_FILE_BYTES)
  })
})
