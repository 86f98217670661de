// `bouncer keys create` run in parallel on an API key store that did not exist yet (a provisioning
// script creating each service's key at once): the store set WAL mode before its busy timeout, so
// all but one process failed at once with "cannot open the API key store …: database is locked"
// (found by the operator probe, as the secrets store's same fault). Each waits its turn now.
import { spawn } from 'node:child_process'
import { once } from 'node:events'
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { stringify } from 'yaml'
import { afterAll, beforeAll, expect, it } from 'vitest'
import { runCliInProcess } from '../helpers/cli-in-process.ts'

const SQLITE_STORE = fileURLToPath(new URL('../../src/identity/api-keys/sqlite-store.ts', import.meta.url))
let dir: string

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'bouncer-keys-first-open-'))
})
afterAll(async () => {
  await rm(dir, { recursive: true, force: true })
})

/** A process that opens the store at `at` (ms since the epoch) and adds one key record; its output. */
async function insertAt(path: string, principal: string, at: number): Promise<string> {
  const script = `
    const { openSqliteKeyStore } = await import(${JSON.stringify(SQLITE_STORE)})
    while (Date.now() < ${at}) {}
    try {
      const store = openSqliteKeyStore(${JSON.stringify(path)})
      await store.insert({ id: ${JSON.stringify(principal.padEnd(16, '0').slice(0, 16))}, principal: ${JSON.stringify(principal)}, description: null, hash: 'x', createdAt: Date.now(), expiresAt: null, revokedAt: null, lastUsedAt: null })
      await store.close?.()
      console.log('stored')
    } catch (err) {
      console.log(err.message)
    }`
  const child = spawn(process.execPath, ['--input-type=module', '-e', script], { stdio: ['ignore', 'pipe', 'inherit'] })
  let out = ''
  child.stdout.on('data', (d: Buffer) => (out += d.toString()))
  await once(child, 'close')
  return out.trim()
}

it('four processes making the key store at once each add their key', { timeout: 60_000 }, async () => {
  for (let round = 0; round < 4; round++) {
    const path = join(dir, `round-${round}.db`)
    const at = Date.now() + 1_500 // every process loaded by then
    const principals = ['aaaa', 'bbbb', 'cccc', 'dddd']
    const outcomes = await Promise.all(principals.map((principal) => insertAt(path, principal, at)))
    expect(outcomes, `round ${round}`).toEqual(['stored', 'stored', 'stored', 'stored'])
    const config = join(dir, `round-${round}.yaml`)
    await writeFile(config, stringify({ audit: { sinks: [] }, api_keys: { store: { type: 'sqlite', path } } }))
    const list = await runCliInProcess(['keys', 'list', '--config', config])
    expect(list.code, list.stderr).toBe(0)
    for (const principal of principals) expect(list.stdout).toContain(principal)
  }
})
