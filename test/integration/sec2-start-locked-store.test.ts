// Found by the secrets probe: a first start while another process held the embedded store's write
// lock (an operator's sqlite3, a script's `bouncer secrets put` loop) could not make the gateway's
// audit checkpoint key there, and serve ended with "bouncer: internal error: the file … is locked:
// another process holds its write lock (try again)": the store's trouble, which the operator can
// fix, called the gateway's own fault. It is said as the store's, without "internal error".
import { randomBytes } from 'node:crypto'
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { DatabaseSync } from 'node:sqlite'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { stringify } from 'yaml'
import { afterAll, describe, expect, it } from 'vitest'
import { runCli } from '../helpers/cli.ts'
import { runCliInProcess } from '../helpers/cli-in-process.ts'

const env = { SEC2_MASTER_KEY: randomBytes(32).toString('base64') }
let holder: DatabaseSync | undefined
let dir: string

afterAll(async () => {
  if (holder?.isTransaction) holder.exec('ROLLBACK')
  holder?.close()
  if (dir) await rm(dir, { recursive: true, force: true })
})

describe('a first start while another process holds the secrets store\'s write lock', () => {
  it('is refused as the store\'s trouble, not an internal error', async () => {
    dir = await mkdtemp(join(tmpdir(), 'bouncer-sec2-start-locked-'))
    const store = join(dir, 'secrets.db')
    const file = join(dir, 'bouncer.yaml')
    await writeFile(file, stringify({
      server: { listen: '127.0.0.1:0' },
      admin: { listen: '127.0.0.1:0' },
      audit: { sinks: [{ type: 'sqlite', path: join(dir, 'audit.db') }], spill_dir: join(dir, 'spill') },
      secrets: { store: { type: 'embedded', path: store, master_key: 'env:SEC2_MASTER_KEY' } },
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
