// Several processes making the embedded store at once (a provisioning script's parallel
// `bouncer secrets put a & bouncer secrets put b &`, two instances starting on a new volume): the
// WAL mode was set before the busy timeout, so all but one failed at once with "database is
// locked"; and each looked for the data key outside the write lock, so two could each make one.
// The values sealed under the first were then "sealed under an unknown data key": no command and
// no gateway could read them again (found by the operator probe). Each process now waits its turn,
// and the store has one data key whoever makes it.
import { spawn } from 'node:child_process'
import { once } from 'node:events'
import { randomBytes } from 'node:crypto'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { afterAll, beforeAll, expect, it } from 'vitest'
import { openEmbeddedStore } from '../../src/secrets/embedded.ts'

const EMBEDDED = fileURLToPath(new URL('../../src/secrets/embedded.ts', import.meta.url))
const masterKey = randomBytes(32).toString('base64')
let dir: string

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'bouncer-secrets-first-open-'))
})
afterAll(async () => {
  await rm(dir, { recursive: true, force: true })
})

/** A process that opens the store at `at` (ms since the epoch) and puts one secret; its output. */
async function putAt(path: string, name: string, at: number): Promise<string> {
  const script = `
    const { openEmbeddedStore } = await import(${JSON.stringify(EMBEDDED)})
    while (Date.now() < ${at}) {}
    try {
      const store = openEmbeddedStore(${JSON.stringify(path)}, Buffer.from(process.env.KEY, 'base64'))
      store.put(${JSON.stringify(name)}, ${JSON.stringify(`${name}-value-0123456789`)})
      store.close()
      console.log('stored')
    } catch (err) {
      console.log(err.message)
    }`
  const child = spawn(process.execPath, ['--input-type=module', '-e', script], { env: { ...process.env, KEY: masterKey }, stdio: ['ignore', 'pipe', 'inherit'] })
  let out = ''
  child.stdout.on('data', (d: Buffer) => (out += d.toString()))
  await once(child, 'close')
  return out.trim()
}

it('four processes making the store at once each store their secret, all under one data key', { timeout: 60_000 }, async () => {
  for (let round = 0; round < 6; round++) {
    const path = join(dir, `round-${round}.db`)
    const at = Date.now() + 1_500 // every process loaded by then
    const names = ['alpha', 'bravo', 'charlie', 'delta']
    const outcomes = await Promise.all(names.map((name) => putAt(path, name, at)))
    expect(outcomes, `round ${round}`).toEqual(['stored', 'stored', 'stored', 'stored'])
    const store = openEmbeddedStore(path, Buffer.from(masterKey, 'base64'))
    try {
      for (const name of names) expect(store.get(name), `round ${round}: ${name}`).toBe(`${name}-value-0123456789`)
    } finally {
      store.close()
    }
  }
})
