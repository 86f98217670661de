// Found by the secrets probe: `bouncer secrets put` (and `rotate`) stored a value every place the
// config uses the secret refuses (a line break in a header, a datasource key under 16 characters):
// "stored tok: version 2 is current", while the running gateway kept the value before (its refresh
// refuses such a value, in its log only), `bouncer check` failed, and the next start or restart
// refused to run. The command now refuses such a value, saying where it would stand, and stores nothing.
import { randomBytes } from 'node:crypto'
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { stringify } from 'yaml'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { runCliInProcess } from '../helpers/cli-in-process.ts'

const env = { SEC2_MASTER_KEY: randomBytes(32).toString('base64') }
let dir: string
let file: string

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'bouncer-sec2-put-refused-'))
  file = join(dir, 'bouncer.yaml')
  await writeFile(file, stringify({
    secrets: { store: { type: 'embedded', path: join(dir, 'secrets.db'), master_key: 'env:SEC2_MASTER_KEY' } },
    upstreams: [{ name: 'app', url: 'http://127.0.0.1:9', headers: { Authorization: 'Bearer ${secret:api-token}' } }],
    datasources: [{ name: 'd', type: 'sqlite', path: join(dir, 'd.db'), key: '${secret:dataset-key}' }],
    routes: [{ id: 'app', path: '/app/*', upstream: 'app', public: true }],
  }))
  for (const [name, value] of [['api-token', 'first-token-value-0123'], ['dataset-key', 'a-dataset-key-of-32-characters-x']] as const) {
    const put = await runCliInProcess(['secrets', 'put', name, '--config', file], { env, input: value })
    expect(put.code, put.stderr).toBe(0)
  }
})
afterAll(async () => {
  await rm(dir, { recursive: true, force: true })
})

const current = async (name: string) => (await runCliInProcess(['secrets', 'get', name, '--reveal', '--config', file], { env })).stdout.trim()

describe('bouncer secrets put and rotate: a value the config refuses', () => {
  it('a line break where the secret stands in a header', async () => {
    const put = await runCliInProcess(['secrets', 'put', 'api-token', '--config', file], { env, input: 'line-one\nline-two' })
    expect(put.code).toBe(1)
    expect(put.stderr).toContain('upstreams[0].headers.Authorization: secret "api-token" cannot stand in the header Authorization')
    expect(put.stderr).toContain('api-token is not stored: the gateway would refuse the value where the config uses it')
    expect(put.stderr).not.toContain('line-one')
    const rotate = await runCliInProcess(['secrets', 'rotate', 'api-token', '--config', file], { env, input: 'line-one\r\nline-two' })
    expect(rotate.code).toBe(1)
    expect(await current('api-token')).toBe('first-token-value-0123')
  })

  it('a datasource key under 16 characters', async () => {
    const put = await runCliInProcess(['secrets', 'put', 'dataset-key', '--config', file], { env, input: 'too-short' })
    expect(put.code).toBe(1)
    expect(put.stderr).toContain('datasources[0].key: secret "dataset-key" is 9 characters: a datasource\'s key is at least 16')
    expect(await current('dataset-key')).toBe('a-dataset-key-of-32-characters-x')
  })

  it('and stores a value every place takes', async () => {
    const put = await runCliInProcess(['secrets', 'put', 'api-token', '--config', file], { env, input: 'second-token-value-0123' })
    expect(put.code, put.stderr).toBe(0)
    expect(await current('api-token')).toBe('second-token-value-0123')
  })
})
