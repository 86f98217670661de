// A probe: a damaged store file (truncated, random bytes) came out as "internal error: database
// disk image is malformed", naming neither the file nor the setting; a new store file was 0644.
import { randomBytes } from 'node:crypto'
import { mkdtempSync, rmSync, statSync, truncateSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterEach, beforeEach, expect, it } from 'vitest'
import { SecretsError } from '../../../src/secrets/crypto.ts'
import { openEmbeddedStore } from '../../../src/secrets/embedded.ts'

let dir: string
let file: string
const key = randomBytes(32)
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'bouncer-embedded-file-'))
  file = join(dir, 'secrets.db')
})
afterEach(() => rmSync(dir, { recursive: true, force: true }))

/** A store with enough versions that its file outgrows a few pages, closed (checkpointed). */
function filledStore(): void {
  const store = openEmbeddedStore(file, key)
  for (let i = 0; i < 200; i++) store.put(`name-${i}`, 'v'.repeat(200))
  store.close()
}

const openError = () => {
  try {
    openEmbeddedStore(file, key).close()
  } catch (err) {
    return err
  }
  return undefined
}

it('a truncated store file is an error naming the file and secrets.store.path', () => {
  filledStore()
  truncateSync(file, 8192)
  const err = openError()
  expect(err).toBeInstanceOf(SecretsError)
  expect((err as Error).message).toBe(`the file ${file} (secrets.store.path) is damaged, or is not a secrets store: database disk image is malformed`)
})

it('a file of random bytes is an error naming the file', () => {
  writeFileSync(file, randomBytes(16_384))
  const err = openError()
  expect(err).toBeInstanceOf(SecretsError)
  expect((err as Error).message).toBe(`the file ${file} (secrets.store.path) is damaged, or is not a secrets store: file is not a database`)
})

it('a new store file and its -wal and -shm are 0600', () => {
  const previous = process.umask(0o022)
  try {
    const store = openEmbeddedStore(file, key)
    store.put('a-name', 'a-value')
    for (const path of [file, `${file}-wal`, `${file}-shm`]) expect([path, (statSync(path).mode & 0o777).toString(8)]).toEqual([path, '600'])
    store.close()
  } finally {
    process.umask(previous)
  }
})
