// A gateway key's scheduled rotation that met another process's write lock on the embedded store
// returned false and said nothing, each refresh: a store locked for good (a forgotten sqlite3
// session) kept the old key for ever, unseen. A lock held past a short grace now fails the
// rotation (the refresh's background task logs and counts it), once a minute while it lasts.
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

const dir = mkdtempSync(join(tmpdir(), 'bouncer-fx3-ring-locked-'))
const logger = createLogger({ level: 'debug', destination: new Writable({ write: (_c: Buffer, _e, cb) => cb() }) })
afterAll(() => rmSync(dir, { recursive: true, force: true }))

describe('a key ring whose rotation meets another process\'s write lock', () => {
  it('fails the rotation once the lock outlasts the grace, at most once a minute, and rotates once it is let go', () => {
    const path = join(dir, 'secrets.db')
    const store = openEmbeddedStore(path, randomBytes(32))
    let clock = Date.now()
    const ring = createKeyRing({
      name: 'bouncer.assertion-key', managed: true, rotateEveryMs: 10_000, retainMs: 60_000, publishAheadMs: 0,
      store, logger, now: () => clock, signs: 'identity assertions', keyName: 'identity assertion key',
    })
    const first = ring.signing().kid
    clock += 20_000
    const holder = new DatabaseSync(path)
    holder.exec('BEGIN IMMEDIATE')
    try {
      expect(ring.refresh(true)).toBe(false) // a moment's lock: tried again at the next refresh
      clock += 2_500
      expect(() => ring.refresh(true)).toThrow(/locked: another process has held its write lock.*identity assertion key/)
      clock += 1_000
      expect(ring.refresh(true)).toBe(false) // said once a minute, not at every refresh
      clock += 60_000
      expect(() => ring.refresh(true)).toThrow(/locked/)
    } finally {
      holder.exec('ROLLBACK')
      holder.close()
    }
    expect(ring.refresh(true)).toBe(true)
    expect(ring.published().map((k) => k.kid)).toContain(first)
    expect(ring.published()[0]?.kid).not.toBe(first)
    store.close()
  })
})
