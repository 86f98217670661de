// `bouncer secrets rekey`: a new master key for the embedded store without rewriting a value or
// stopping a gateway. Before, no command could change the master key: a leaked key meant a new
// store and every secret put again.
import { randomBytes } from 'node:crypto'
import { existsSync } from 'node:fs'
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { stringify } from 'yaml'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { dropPreviousMasterKey, openEmbeddedStore, rekeyEmbeddedStore } from '../../src/secrets/index.ts'
import { runCliInProcess } from '../helpers/cli-in-process.ts'

let dir: string
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'bouncer-secrets-rekey-'))
})
afterAll(async () => {
  await rm(dir, { recursive: true, force: true })
})

const newKey = () => randomBytes(32).toString('base64')

/**
 * Seeds the store with one secret in process, as `bouncer secrets put` does (openSecretStore opens
 * the embedded store with the config's master key): a CLI run is a second of CPU, and what these
 * tests check is the rekey and what reads the store after it.
 */
function seed(store: string, key: string, name: string, value: string): void {
  const opened = openEmbeddedStore(store, Buffer.from(key, 'base64'))
  try {
    opened.put(name, value)
  } finally {
    opened.close()
  }
}

async function storeConfig(name: string): Promise<{ file: string; store: string }> {
  const store = join(dir, `${name}.db`)
  const file = join(dir, `${name}.yaml`)
  await writeFile(file, stringify({ audit: { sinks: [] }, secrets: { store: { type: 'embedded', path: store, master_key: 'env:BOUNCER_MASTER_KEY' } } }))
  return { file, store }
}

describe('bouncer secrets rekey', () => {
  it('seals the store under the new key; the previous opens it too until --drop-previous, given the new key', async () => {
    const { file, store } = await storeConfig('rotate')
    const [oldKey, nextKey] = [newKey(), newKey()]
    const withKey = (key: string) => ({ env: { BOUNCER_MASTER_KEY: key, BOUNCER_NEXT_MASTER_KEY: nextKey } })
    seed(store, oldKey, 'sales-token', 'tok-1')

    const rekey = await runCliInProcess(['secrets', 'rekey', '--config', file, '--new-master-key', 'env:BOUNCER_NEXT_MASTER_KEY'], withKey(oldKey))
    // The config keeps no audit log (sinks: []): the change is made, and said to be unaudited.
    expect(rekey.stderr).toMatch(/^warning: this change is NOT AUDITED: [^\n]+\n$/)
    expect(rekey.code).toBe(0)
    expect(rekey.stdout).toContain('is sealed under the new master key')
    for (const key of [nextKey, oldKey]) {
      const get = await runCliInProcess(['secrets', 'get', 'sales-token', '--reveal', '--config', file], withKey(key))
      expect(get.stdout).toBe('tok-1\n')
    }

    const early = await runCliInProcess(['secrets', 'rekey', '--drop-previous', '--config', file], withKey(oldKey))
    expect(early.code).toBe(1)
    expect(early.stderr).toContain('the master key given is the previous one')
    const drop = await runCliInProcess(['secrets', 'rekey', '--drop-previous', '--config', file], withKey(nextKey))
    expect(drop.code).toBe(0)
    expect(drop.stdout).toContain('opens with its current master key only')

    const refused = await runCliInProcess(['secrets', 'get', 'sales-token', '--reveal', '--config', file], withKey(oldKey))
    expect(refused.code).toBe(1)
    expect(refused.stderr).toContain('the master key does not open the secrets store')
    expect(refused.stdout).toBe('')
    expect((await runCliInProcess(['secrets', 'get', 'sales-token', '--reveal', '--config', file], withKey(nextKey))).stdout).toBe('tok-1\n')
  }, 60_000)

  it('a store opened before the rekey (a running gateway) goes on reading new versions: it holds the data key', async () => {
    const { store } = await storeConfig('running')
    const [oldKey, nextKey] = [newKey(), newKey()]
    seed(store, oldKey, 'sales-token', 'tok-1')
    const running = openEmbeddedStore(store, Buffer.from(oldKey, 'base64'))
    try {
      // What `bouncer secrets rekey --new-master-key`, `rekey --drop-previous` and `rotate` call, on
      // connections of their own (their output is the previous test's and secrets-cli's): here only
      // what the running store reads after them is in question.
      rekeyEmbeddedStore(store, Buffer.from(oldKey, 'base64'), Buffer.from(nextKey, 'base64'))
      expect(dropPreviousMasterKey(store, Buffer.from(nextKey, 'base64'))).toBe(1)
      seed(store, nextKey, 'sales-token', 'tok-2')
      expect(() => seed(store, oldKey, 'sales-token', 'tok-3'), 'the old key no longer opens the store').toThrow('the master key does not open the secrets store')
      expect(running.get('sales-token')).toBe('tok-2')
    } finally {
      running.close()
    }
  }, 60_000)

  it('refuses what it cannot do, with a sentence and no change', async () => {
    const { file, store } = await storeConfig('refusals')
    const key = newKey()
    const env = { BOUNCER_MASTER_KEY: key, SAME_KEY: key, WRONG_KEY: newKey() }
    const run = (...args: string[]) => runCliInProcess(['secrets', 'rekey', '--config', file, ...args], { env })
    expect(await run()).toMatchObject({ code: 2, stderr: expect.stringContaining('takes --new-master-key env:NAME|file:PATH, or --drop-previous') })
    expect(await run('--new-master-key', 'env:SAME_KEY', '--drop-previous')).toMatchObject({ code: 2 })
    expect(await run('--new-master-key', 'env:WRONG_KEY')).toMatchObject({ code: 1, stderr: expect.stringContaining('there is no secrets store at') })
    expect(existsSync(store), 'a refused rekey made no store').toBe(false)
    seed(store, key, 'a', 'v')
    expect(await run('--new-master-key', 'env:SAME_KEY')).toMatchObject({ code: 1, stderr: expect.stringContaining('is the one the store is sealed under now') })
    expect(await run('--new-master-key', 'env:UNSET_KEY')).toMatchObject({ code: 1, stderr: expect.stringContaining('environment variable UNSET_KEY is not set') })
    expect(await run('--new-master-key', 'sesame')).toMatchObject({ code: 2, stderr: expect.stringContaining('--new-master-key takes env:NAME or file:PATH') })
    const wrong = await runCliInProcess(['secrets', 'rekey', '--config', file, '--new-master-key', 'env:SAME_KEY'], { env: { ...env, BOUNCER_MASTER_KEY: newKey() } })
    expect(wrong).toMatchObject({ code: 1, stderr: expect.stringContaining('the master key does not open the secrets store') })
    expect((await runCliInProcess(['secrets', 'get', 'a', '--reveal', '--config', file], { env })).stdout).toBe('v\n')

    // With an audit log that keeps records, the change's signer looks for the checkpoint key in the
    // store: looking must not create it (a rekey then sealed a store made a moment before).
    const audited = join(dir, 'audited.yaml')
    const absent = join(dir, 'absent.db')
    await writeFile(audited, stringify({ audit: { sinks: [{ type: 'sqlite', path: join(dir, 'audited-audit.db') }] }, secrets: { store: { type: 'embedded', path: absent, master_key: 'env:BOUNCER_MASTER_KEY' } } }))
    const noStore = await runCliInProcess(['secrets', 'rekey', '--config', audited, '--new-master-key', 'env:WRONG_KEY'], { env })
    expect(noStore).toMatchObject({ code: 1, stderr: expect.stringContaining('there is no secrets store at') })
    expect(existsSync(absent)).toBe(false)

    const files = join(dir, 'files.yaml')
    await writeFile(files, stringify({ audit: { sinks: [] }, secrets: { store: { type: 'file', dir } } }))
    const notEmbedded = await runCliInProcess(['secrets', 'rekey', '--config', files, '--new-master-key', 'env:SAME_KEY'], { env })
    expect(notEmbedded).toMatchObject({ code: 1, stderr: expect.stringContaining('only an embedded secrets store') })
  }, 60_000)
})
