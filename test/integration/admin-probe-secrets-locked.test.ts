// `bouncer secrets` while another process holds the store's write lock (a gateway's rotation, an
// operator's sqlite3, a backup tool): put, rotate, delete and rekey waited the busy timeout, then
// ended in "bouncer: internal error: database is locked", which names neither the file nor the
// setting and reads as a bug of Bouncer's (found by the operator probe). They say which file is
// locked, and the lock gone, the same command goes through.
import { randomBytes } from 'node:crypto'
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { DatabaseSync } from 'node:sqlite'
import { stringify } from 'yaml'
import { afterAll, beforeAll, expect, it } from 'vitest'
import { openEmbeddedStore } from '../../src/secrets/embedded.ts'
import { runCli } from '../helpers/cli.ts'
import { runCliInProcess } from '../helpers/cli-in-process.ts'

let dir: string
let store: string
let config: string
const masterKey = randomBytes(32).toString('base64')
const env = { BOUNCER_MASTER_KEY: masterKey, NEW_MASTER_KEY: randomBytes(32).toString('base64') }

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'bouncer-secrets-locked-'))
  store = join(dir, 'secrets.db')
  const opened = openEmbeddedStore(store, Buffer.from(masterKey, 'base64'))
  opened.put('sales-token', 'sales-token-value-0123456789')
  opened.close()
  config = join(dir, 'bouncer.yaml')
  await writeFile(config, stringify({ audit: { sinks: [] }, secrets: { store: { type: 'embedded', path: store, master_key: 'env:BOUNCER_MASTER_KEY' } } }))
})
afterAll(async () => {
  await rm(dir, { recursive: true, force: true })
})

it('a store another process holds the write lock of is named as locked, not an internal error', { timeout: 60_000 }, async () => {
  const holder = new DatabaseSync(store)
  holder.exec('BEGIN IMMEDIATE')
  const commands = [
    { args: ['put', 'other-token'], input: 'other-token-value-0123456789' },
    { args: ['rotate', 'sales-token'], input: 'sales-token-value-2-0123456789' },
    { args: ['delete', 'sales-token'] },
    { args: ['rekey', '--new-master-key', 'env:NEW_MASTER_KEY'] },
  ]
  try {
    const results = await Promise.all(commands.map(({ args, input }) => runCli(['secrets', ...args, '--config', config], { input, env, timeout: 30_000 })))
    for (const [i, result] of results.entries()) {
      const errors = result.stderr.split('\n').filter((line) => line.startsWith('bouncer:'))
      expect(result.code, commands[i]?.args.join(' ')).toBe(1)
      expect(errors, commands[i]?.args.join(' ')).toHaveLength(1)
      expect(errors[0]).not.toContain('internal error')
      expect(errors[0]).toContain(store)
      expect(errors[0]).toContain('secrets.store.path')
      expect(errors[0]).toMatch(/locked/)
      expect(result.stderr).not.toMatch(/value-/)
    }
  } finally {
    holder.exec('ROLLBACK')
    holder.close()
  }
  // Nothing was written while it was locked; free, the same commands go through.
  const reveal = await runCliInProcess(['secrets', 'get', 'sales-token', '--reveal', '--config', config], { env })
  expect(reveal).toMatchObject({ code: 0, stdout: 'sales-token-value-0123456789\n' })
  const put = await runCliInProcess(['secrets', 'put', 'other-token', '--config', config], { input: 'other-token-value-0123456789', env })
  expect(put).toMatchObject({ code: 0, stdout: 'stored other-token: version 1 is current\n' })
})
