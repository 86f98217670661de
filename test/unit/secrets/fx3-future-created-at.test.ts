// A secret version or gateway key whose createdAt is in this process's future (another instance's
// clock ahead, or this one's set back) counted as not yet made: its rotation, and the switch to a
// new signing key, waited for the clock to catch up (an hour's skew: an hour late). Such a time now
// counts from when the process first saw it, and is warned of once.
import { randomBytes } from 'node:crypto'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Writable } from 'node:stream'
import { afterAll, describe, expect, it } from 'vitest'
import type { SecretsConfig } from '../../../src/config/index.ts'
import { openEmbeddedStore } from '../../../src/secrets/embedded.ts'
import { rotationScheduler } from '../../../src/secrets/rotation.ts'
import { createKeyRing } from '../../../src/secrets/signing-keys.ts'
import { createBackgroundTasks } from '../../../src/telemetry/background.ts'
import { createLogger } from '../../../src/telemetry/logger.ts'

const HOUR = 3_600_000
const dir = mkdtempSync(join(tmpdir(), 'bouncer-fx3-future-'))
const logs: string[] = []
const logger = createLogger({ level: 'debug', destination: new Writable({ write: (c: Buffer, _e, cb) => (logs.push(c.toString()), cb()) }) })
const background = createBackgroundTasks(logger, { backgroundFailed: () => {} })
afterAll(() => rmSync(dir, { recursive: true, force: true }))
const warnings = (text: string) => logs.filter((line) => line.includes('"level":"warn"') && line.includes(text)).length

describe('a createdAt in the future', () => {
  it('a scheduled secret rotation counts the version\'s age from when it was first seen', async () => {
    const path = join(dir, 'rotation.db')
    const store = openEmbeddedStore(path, randomBytes(32))
    store.put('api-token', 'first-value-0123456789')
    let clock = Date.now() - HOUR // this process's clock an hour behind the one that wrote the version
    const secrets = { store: { type: 'embedded', path, master_key: 'env:X' }, rotation: { 'api-token': { every: 10_000, generate: 32 } } } as unknown as SecretsConfig
    const scheduler = rotationScheduler(store, secrets, logger, background, () => clock)
    expect(await scheduler.due()).toEqual([])
    clock += 5_000
    expect(await scheduler.due()).toEqual([])
    clock += 6_000
    expect(await scheduler.due()).toEqual(['api-token'])
    expect(warnings('api-token')).toBe(1)
    store.close()
  })

  // A name of its own: the warning is once a process by name, and unit files share their process.
  it('a gateway key rotates and switches counting from when it was first seen', () => {
    const store = openEmbeddedStore(join(dir, 'ring.db'), randomBytes(32))
    let clock = Date.now() - HOUR
    const ring = createKeyRing({
      name: 'fx3-future-ring-key', managed: true, rotateEveryMs: 10_000, retainMs: 60_000, publishAheadMs: 2_000,
      store, logger, now: () => clock, signs: 'exchanged tokens', keyName: 'token exchange key',
    })
    const first = ring.signing().kid
    clock += 11_000
    expect(ring.refresh(true)).toBe(true) // due: ten seconds after the key was first seen
    const second = ring.published().find((k) => k.kid !== first)?.kid
    expect(ring.signing().kid).toBe(first) // published ahead first
    clock += 2_001
    expect(ring.signing().kid).toBe(second)
    expect(warnings('fx3-future-ring-key')).toBe(1) // the first key: the new one is made by this clock
    store.close()
  })
})
