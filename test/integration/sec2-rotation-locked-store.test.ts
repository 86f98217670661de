// Found by the secrets probe: a scheduled rotation (or the gateway's own key rotation) that met
// another process's write lock on the embedded store (an operator's sqlite3 session, `bouncer
// secrets` in another shell, another instance) waited for it in SQLite's busy handler, which sleeps
// on the event loop: every request of the gateway stood still for 5 s (5,044 ms measured), every
// retry. The gateway's write now waits for the lock on timers, serving meanwhile; still locked, the
// rotation fails as locked and is tried again on its backoff.
import { randomBytes } from 'node:crypto'
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { DatabaseSync } from 'node:sqlite'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { stringify } from 'yaml'
import { request } from 'undici'
import { afterAll, describe, expect, it } from 'vitest'
import { startServe, type ServeProcess } from '../helpers/cli.ts'
import { waitFor } from '../helpers/wait.ts'

const env = { SEC2_MASTER_KEY: randomBytes(32).toString('base64') }
let gateway: ServeProcess | undefined
let holder: DatabaseSync | undefined
let dir: string

afterAll(async () => {
  if (holder?.isTransaction) holder.exec('ROLLBACK')
  holder?.close()
  await gateway?.stop('SIGKILL')
  if (dir) await rm(dir, { recursive: true, force: true })
})

describe('a rotation while another process holds the store\'s write lock', () => {
  it('waits for it on timers, the gateway answering meanwhile, and rotates once it is let go', async () => {
    dir = await mkdtemp(join(tmpdir(), 'bouncer-sec2-locked-'))
    const store = join(dir, 'secrets.db')
    const file = join(dir, 'bouncer.yaml')
    await writeFile(file, stringify({
      server: { listen: '127.0.0.1:0' },
      admin: { listen: '127.0.0.1:0' },
      secrets: { store: { type: 'embedded', path: store, master_key: 'env:SEC2_MASTER_KEY' }, refresh_interval: '100ms', rotation: { 'api-token': { every: '1s' } } },
      upstreams: [{ name: 'app', url: 'http://127.0.0.1:9' }],
      routes: [{ id: 'app', path: '/app/*', upstream: 'app', public: true }],
    }))
    gateway = await startServe(['--config', file], { env })
    const output = () => (gateway?.stdout() ?? '') + (gateway?.stderr() ?? '')
    // The first version is made at once; the lock is taken before it is a second old: the next rotation meets it.
    await waitFor(() => output().includes('"msg":"secret rotated"'), 'the first version')
    holder = new DatabaseSync(store)
    holder.exec('BEGIN IMMEDIATE')
    let slowest = 0
    await waitFor(async () => {
      const started = Date.now()
      const res = await request(`${gateway?.adminUrl}/healthz`)
      await res.body.dump()
      slowest = Math.max(slowest, Date.now() - started)
      return output().includes('secret rotation failed')
    }, 'the rotation to fail', 15_000)
    expect(output()).toMatch(/the secrets store is locked: another process has held its write lock/)
    expect(slowest).toBeLessThan(1_000)
    // Once the lock is let go, the retry rotates.
    holder.exec('ROLLBACK')
    await waitFor(() => output().split('"msg":"secret rotated"').length === 3, 'the retry to rotate', 10_000)
  }, 30_000)
})
