// `bouncer secrets list`, `versions`, `get` and `delete` only read (or remove) what is there, but on
// a store that did not exist yet they made one: its directory, the file, and a data key sealed under
// whatever master key the shell had. An operator checking the setup with the wrong key in the
// environment left a store the gateway's key does not open ("the master key does not open the
// secrets store"), and a typo in the path was answered "no secrets" (found by the operator probe).
// They say there is no store, and make nothing; `put` makes it.
import { randomBytes } from 'node:crypto'
import { existsSync } from 'node:fs'
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { stringify } from 'yaml'
import { afterAll, beforeAll, expect, it } from 'vitest'
import { runCliInProcess } from '../helpers/cli-in-process.ts'

let dir: string
let config: string
let store: string
const env = { BOUNCER_MASTER_KEY: randomBytes(32).toString('base64') }

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'bouncer-secrets-read-'))
  store = join(dir, 'data', 'secrets.db')
  config = join(dir, 'bouncer.yaml')
  await writeFile(config, stringify({ audit: { sinks: [] }, secrets: { store: { type: 'embedded', path: store, master_key: 'env:BOUNCER_MASTER_KEY' } } }))
})
afterAll(async () => {
  await rm(dir, { recursive: true, force: true })
})

it('list, versions, get and delete on a store not made yet say so, and make nothing', async () => {
  for (const args of [['list'], ['versions', 'sales-token'], ['get', 'sales-token', '--reveal'], ['delete', 'sales-token']]) {
    const result = await runCliInProcess(['secrets', ...args, '--config', config], { env })
    expect(result.code, args.join(' ')).toBe(1)
    expect(result.stdout, args.join(' ')).toBe('')
    expect(result.stderr, args.join(' ')).toContain(`bouncer: there is no secrets store at ${store} (secrets.store.path)`)
    expect(existsSync(join(dir, 'data')), args.join(' ')).toBe(false)
  }
  const put = await runCliInProcess(['secrets', 'put', 'sales-token', '--config', config], { env, input: 'sales-token-value-0123456789' })
  expect(put).toMatchObject({ code: 0, stdout: 'stored sales-token: version 1 is current\n' })
  expect(await runCliInProcess(['secrets', 'list', '--config', config], { env })).toMatchObject({ code: 0, stdout: expect.stringMatching(/^sales-token {2}version 1 /) })
})
