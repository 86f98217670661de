// After start, a gateway key's value that is no key (deleted, or junk written by another process)
// is replaced by a new key: with another process holding the store's write lock, that put waited
// in SQLite's busy handler, which sleeps on the event loop (5 s: every request stood still), then
// threw. The key ring now writes it without waiting: locked, the keys held stay and a later refresh
// replaces it.
import { randomBytes } from 'node:crypto'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { DatabaseSync } from 'node:sqlite'
import { Writable } from 'node:stream'
import { afterAll, describe, expect, it } from 'vitest'
import { openEmbeddedStore } from '../../../src/secrets/embedded.ts'
import { createKeyRing } from '../../../src/secrets/signing-keys.ts'
import { createLogger } from '../../../src/telemetry/logger.ts'

const dir = mkdtempSync(join(tmpdir(), 'bouncer-fx3-replace-locked-'))
const logs: string[] = []
const logger = createLogger({ level: 'debug', destination: new Writable({ write: (c: Buffer, _e, cb) => (logs.push(c.toString()), cb()) }) })
afterAll(() => rmSync(dir, { recursive: true, force: true }))

describe('a key ring replacing a stored value that is no key while the store is locked', () => {
  it('does not wait for the lock: the keys held stay, and a refresh after the lock replaces it', () => {
    const path = join(dir, 'secrets.db')
    const masterKey = randomBytes(32)
    const store = openEmbeddedStore(path, masterKey)
    const ring = createKeyRing({
      name: 'bouncer.assertion-key', managed: true, rotateEveryMs: 3_600_000, retainMs: 60_000, publishAheadMs: 0,
      store, logger, signs: 'identity assertions', keyName: 'identity assertion key',
    })
    const first = ring.signing().kid
    const other = openEmbeddedStore(path, masterKey)
    other.put('bouncer.assertion-key', 'not a key at all')
    other.close()
    const holder = new DatabaseSync(path)
    holder.exec('BEGIN IMMEDIATE')
    try {
      const started = Date.now()
      ring.refresh(false)
      expect(Date.now() - started).toBeLessThan(1_000)
      expect(ring.signing().kid).toBe(first)
      ring.refresh(false)
      expect(logs.filter((line) => line.includes('does not hold a signing key')).length).toBe(1) // said once, not at every refresh
    } finally {
      holder.exec('ROLLBACK')
      holder.close()
    }
    expect(ring.refresh(false)).toBe(true)
    expect(ring.signing().kid).not.toBe(first)
    expect(ring.published().map((k) => k.kid)).toContain(first)
    store.close()
  })
})
