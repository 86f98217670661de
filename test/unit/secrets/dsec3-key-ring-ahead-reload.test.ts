// A gateway key made in this process's future (another instance's clock ahead, or this one's set
// back) counts its age from when the process first saw it. A reload builds a new key ring, which
// counted from the reload instead: every reload during the skew put the key's rotation, and the
// switch to a new key, off again. The first sight now goes across reloads with the handover.
import { randomBytes } from 'node:crypto'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Writable } from 'node:stream'
import { afterAll, describe, expect, it } from 'vitest'
import { openEmbeddedStore } from '../../../src/secrets/embedded.ts'
import { createKeyRing, type KeyRingHandover } from '../../../src/secrets/signing-keys.ts'
import { createLogger } from '../../../src/telemetry/logger.ts'

const HOUR = 3_600_000
const dir = mkdtempSync(join(tmpdir(), 'bouncer-dsec3-ahead-'))
const logger = createLogger({ level: 'debug', destination: new Writable({ write: (_c: Buffer, _e, cb) => cb() }) })
afterAll(() => rmSync(dir, { recursive: true, force: true }))

describe('a gateway key made ahead of this clock, across a reload', () => {
  it('keeps counting its age from when this process first saw it', () => {
    const store = openEmbeddedStore(join(dir, 'ring.db'), randomBytes(32))
    let clock = Date.now() - HOUR // this process's clock an hour behind the one that made the key
    const ringOf = (handover: KeyRingHandover | null) => createKeyRing({
      name: 'dsec3-ahead-ring-key', managed: true, rotateEveryMs: 10_000, retainMs: 60_000, publishAheadMs: 2_000,
      store, logger, now: () => clock, handover, signs: 'exchanged tokens', keyName: 'token exchange key',
    })
    const running = ringOf(null)
    const first = running.signing().kid
    clock += 6_000
    expect(running.refresh(true)).toBe(false) // six seconds old, as this process counts
    const reloaded = ringOf(running.handover())
    clock += 3_000
    expect(reloaded.refresh(true)).toBe(false) // nine
    const again = ringOf(reloaded.handover())
    clock += 2_000
    // Eleven seconds since it was first seen: due, however many reloads came between.
    expect(again.refresh(true)).toBe(true)
    expect(again.published().map((k) => k.kid)).toContain(first)
    expect(again.published().find((k) => k.kid !== first)).toBeDefined()
    store.close()
  })
})
