// A reload builds a new key ring for the identity assertion key. Where the store held no key (deleted
// by hand, or junk) and another process held its write lock, the ring's write of a new key waited
// in SQLite's busy handler, which sleeps on the event loop: every request stood still for 5 s, and
// then the reload failed. The key is now written before the ring is built, waiting on timers: the
// gateway keeps serving meanwhile, and once the lock goes the reload goes through.
import { randomBytes } from 'node:crypto'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { monitorEventLoopDelay } from 'node:perf_hooks'
import { DatabaseSync } from 'node:sqlite'
import { afterAll, beforeAll, expect, it } from 'vitest'
import { openEmbeddedStore } from '../../src/secrets/embedded.ts'
import { isSigningKey } from '../../src/secrets/signing-keys.ts'
import { startTestGateway, type TestGateway } from '../helpers/gateway.ts'
import { startUpstream, type TestUpstream } from '../helpers/upstream.ts'

const masterKey = randomBytes(32)
let dir: string
let upstream: TestUpstream
let gw: TestGateway

const config = (path: string, routes: number) => ({
  // A refresh would replace the missing key itself before the reload: none comes in this test.
  secrets: { store: { type: 'embedded', path, master_key: 'env:BOUNCER_MASTER_KEY' }, refresh_interval: '1h' },
  upstreams: [{ name: 'api', url: upstream.url, identity_assertion: true }],
  routes: Array.from({ length: routes }, (_, i) => ({ id: `r${i}`, path: `/r${i}/*`, upstream: 'api', public: true })),
})

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'bouncer-dsec3-reload-locked-'))
  upstream = await startUpstream()
  gw = await startTestGateway(config(join(dir, 'secrets.db'), 1), { env: { BOUNCER_MASTER_KEY: masterKey.toString('base64') } })
})

afterAll(async () => {
  await gw?.close()
  await upstream?.close()
  if (dir) await rm(dir, { recursive: true, force: true })
})

it('a reload that must make the key while the store is locked waits on timers, not on the event loop', async () => {
  const path = join(dir, 'secrets.db')
  const other = openEmbeddedStore(path, masterKey)
  expect(isSigningKey(other.get('bouncer.assertion-key') as string)).toBe(true)
  other.delete('bouncer.assertion-key')
  other.close()
  await gw.writeConfig(config(path, 2))

  const holder = new DatabaseSync(path)
  holder.exec('BEGIN IMMEDIATE')
  const delay = monitorEventLoopDelay({ resolution: 10 })
  delay.enable()
  let released = false
  const release = () => {
    if (released) return
    released = true
    holder.exec('ROLLBACK')
    holder.close()
  }
  try {
    const reload = gw.reload()
    // Let go of the lock a moment later: on a timer, which only fires if the event loop turns.
    setTimeout(release, 500)
    const result = await reload
    delay.disable()
    expect(result).toMatchObject({ ok: true })
    expect(delay.max / 1e6).toBeLessThan(1_000)
  } finally {
    delay.disable()
    release()
  }
  const check = openEmbeddedStore(path, masterKey)
  try {
    expect(isSigningKey(check.get('bouncer.assertion-key') as string)).toBe(true)
  } finally {
    check.close()
  }
})
