// What an operator sees from `bouncer check` and `bouncer secrets` for an empty secret file and a
// damaged embedded store: a sentence naming the file, not "internal error: file is not a database".
import { randomBytes } from 'node:crypto'
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { stringify } from 'yaml'
import { afterAll, beforeAll, expect, it } from 'vitest'
import { runCliInProcess } from '../helpers/cli-in-process.ts'

let dir: string
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'bouncer-secret-values-cli-'))
})
afterAll(async () => {
  await rm(dir, { recursive: true, force: true })
})

const upstreams = [{ name: 'sales', url: 'http://127.0.0.1:9', headers: { Authorization: 'Bearer ${secret:sales-token}' } }]
const routes = [{ id: 'sales', path: '/*', upstream: 'sales', public: true }]

it('bouncer check refuses an empty secret file, naming the secret\'s place and the file', async () => {
  const secretsDir = await mkdtemp(join(dir, 'files-'))
  await writeFile(join(secretsDir, 'sales-token'), '\n')
  const file = join(dir, 'empty.yaml')
  await writeFile(file, stringify({ audit: { sinks: [] }, secrets: { store: { type: 'file', dir: secretsDir } }, upstreams, routes }))
  const result = await runCliInProcess(['check', '--config', file])
  expect(result.code).toBe(1)
  expect(result.stderr).toContain(`upstreams[0].headers.Authorization: secret file ${join(secretsDir, 'sales-token')} is empty: an empty value is refused`)
})

it('bouncer check and bouncer secrets list name a damaged store file and secrets.store', async () => {
  const store = join(dir, 'damaged.db')
  await writeFile(store, randomBytes(16_384))
  const file = join(dir, 'damaged.yaml')
  await writeFile(file, stringify({ audit: { sinks: [] }, secrets: { store: { type: 'embedded', path: store, master_key: 'env:BOUNCER_MASTER_KEY' } }, upstreams, routes }))
  const env = { BOUNCER_MASTER_KEY: randomBytes(32).toString('base64') }
  const reason = `the file ${store} (secrets.store.path) is damaged, or is not a secrets store: file is not a database`
  const check = await runCliInProcess(['check', '--config', file], { env })
  expect(check.code).toBe(1)
  expect(check.stderr).toContain(`secrets.store: cannot open the secrets store: ${reason}`)
  const list = await runCliInProcess(['secrets', 'list', '--config', file], { env })
  expect(list.stderr).toBe(`bouncer: ${reason}\n`)
  expect(list.stderr).not.toContain('internal error')
})
