// Under server.workers, a first start while another process held the secrets store's write lock:
// the store's error crosses from the worker thread as only its message and code, so serve's check
// by class missed it and said "internal error" where the single-process start names the store.
import { randomBytes } from 'node:crypto'
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { DatabaseSync } from 'node:sqlite'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { stringify } from 'yaml'
import { afterAll, describe, expect, it } from 'vitest'
import { runCli } from '../helpers/cli.ts'
import { runCliInProcess } from '../helpers/cli-in-process.ts'

const env = { FX3_MASTER_KEY: randomBytes(32).toString('base64') }
let holder: DatabaseSync | undefined
let dir: string

afterAll(async () => {
  if (holder?.isTransaction) holder.exec('ROLLBACK')
  holder?.close()
  if (dir) await rm(dir, { recursive: true, force: true })
})

describe('server.workers: 2, a first start while another process holds the secrets store\'s write lock', () => {
  it('is refused as the store\'s trouble, not an internal error', async () => {
    dir = await mkdtemp(join(tmpdir(), 'bouncer-fx3-workers-locked-'))
    const store = join(dir, 'secrets.db')
    const file = join(dir, 'bouncer.yaml')
    await writeFile(file, stringify({
      server: { listen: '127.0.0.1:0', workers: 2 },
      admin: { listen: '127.0.0.1:0' },
      audit: { sinks: [{ type: 'sqlite', path: join(dir, 'audit.db') }], spill_dir: join(dir, 'spill') },
      secrets: { store: { type: 'embedded', path: store, master_key: 'env:FX3_MASTER_KEY' } },
      upstreams: [{ name: 'app', url: 'http://127.0.0.1:9', headers: { Authorization: 'Bearer ${secret:api-token}' } }],
      routes: [{ id: 'app', path: '/app/*', upstream: 'app', public: true }],
    }))
    const put = await runCliInProcess(['secrets', 'put', 'api-token', '--config', file], { env, input: 'first-token-value-0123' })
    expect(put.code, put.stderr).toBe(0)
    holder = new DatabaseSync(store)
    holder.exec('BEGIN IMMEDIATE')
    const serve = await runCli(['serve', '--config', file], { env, timeout: 15_000 })
    expect(serve.code, serve.stderr).toBe(1)
    expect(serve.stderr).toContain(`the file ${store} (secrets.store.path) is locked: another process holds its write lock (try again)`)
    expect(serve.stderr).not.toContain('internal error')
  }, 20_000)
})
