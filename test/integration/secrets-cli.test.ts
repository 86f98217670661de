// `bouncer secrets …` as an operator runs it: values in on stdin, never out except with --reveal,
// one-line reasons and the SPEC's exit codes when something is wrong.
import { generateKeyPairSync, randomBytes } from 'node:crypto'
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { stringify } from 'yaml'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { openEmbeddedStore } from '../../src/secrets/index.ts'
import { runCliInProcess } from '../helpers/cli-in-process.ts'

let dir: string
let config: string
let storePath: string
const env = { BOUNCER_MASTER_KEY: randomBytes(32).toString('base64') }

async function writeConfig(name: string, secrets: Record<string, unknown> | undefined): Promise<string> {
  const file = join(dir, `${name}.yaml`)
  await writeFile(file, stringify({ audit: { sinks: [] }, ...(secrets ? { secrets } : {}) }))
  return file
}

const secrets = (args: string[], options: { input?: string; env?: NodeJS.ProcessEnv; config?: string } = {}) =>
  runCliInProcess(['secrets', ...args, '--config', options.config ?? config], { input: options.input, env: options.env ?? env })

/**
 * Stores a secret in process, as `bouncer secrets put` does (the embedded store opened with the
 * config's master key): for a test about what comes after a put (put's own output is the first test's).
 */
function seed(name: string, value: string): void {
  const store = openEmbeddedStore(storePath, Buffer.from(env.BOUNCER_MASTER_KEY, 'base64'))
  try {
    store.put(name, value)
  } finally {
    store.close()
  }
}

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'bouncer-secrets-cli-'))
  storePath = join(dir, 'secrets.db')
  config = await writeConfig('bouncer', { store: { type: 'embedded', path: storePath, master_key: 'env:BOUNCER_MASTER_KEY' } })
})
afterAll(async () => {
  await rm(dir, { recursive: true, force: true })
})

describe('bouncer secrets', () => {
  it('puts, rotates, lists and shows versions without ever printing a value', async () => {
    const put = await secrets(['put', 'sales-token'], { input: 'first-value-0123456789\n' })
    expect(put).toMatchObject({ code: 0, stdout: 'stored sales-token: version 1 is current\n' })

    const rotated = await secrets(['rotate', 'sales-token'], { input: 'second-value-0123456789' })
    expect(rotated).toMatchObject({ code: 0, stdout: 'rotated sales-token: version 2 is current, version 1 is previous\n' })
    const generated = await secrets(['rotate', 'sales-token', '--generate', '32'])
    expect(generated.code).toBe(0)

    const list = await secrets(['list'])
    expect(list.stdout).toMatch(/^sales-token {2}version 3 {2}\d{4}-\d\d-\d\dT/)
    const versions = await secrets(['versions', 'sales-token'])
    expect(versions.stdout.trim().split('\n').map((line) => line.trim().split(/\s+/)[0])).toEqual(['3', '2', '1'])
    for (const out of [put, rotated, generated, list, versions]) {
      expect(out.stdout + out.stderr).not.toMatch(/first-value|second-value/)
    }
  })

  it('prints a value only with get --reveal (the trailing newline of the input is not part of it)', async () => {
    await secrets(['put', 'reveal-me'], { input: 'the-value-0123456789\n' })
    expect(await secrets(['get', 'reveal-me'])).toMatchObject({ code: 1, stdout: '', stderr: expect.stringContaining('only with --reveal') })
    expect(await secrets(['get', 'reveal-me', '--reveal'])).toMatchObject({ code: 0, stdout: 'the-value-0123456789\n' })
  })

  it('deletes a secret with all its versions', async () => {
    seed('short-lived', 'value-0123456789')
    expect(await secrets(['delete', 'short-lived'])).toMatchObject({ code: 0, stdout: 'deleted short-lived\n' })
    expect(await secrets(['versions', 'short-lived'])).toMatchObject({ code: 1, stderr: expect.stringContaining('no secret short-lived') })
    expect((await secrets(['delete', 'short-lived'])).code).toBe(1)
  })

  it('refuses bad input with one line and the right exit code', async () => {
    expect(await secrets(['put', 'empty'], { input: '' })).toMatchObject({ code: 1, stderr: expect.stringContaining('empty') })
    expect(await secrets(['put', 'no/slashes'], { input: 'x' })).toMatchObject({ code: 2, stderr: expect.stringContaining('not a valid secret name') })
    expect(await secrets(['rotate', 'never-stored'], { input: 'value' })).toMatchObject({ code: 1, stderr: expect.stringContaining('store it first') })
    expect((await secrets(['rotate', 'sales-token', '--generate', '4'])).code).toBe(2)
    const wrongKey = await secrets(['list'], { env: { BOUNCER_MASTER_KEY: randomBytes(32).toString('base64') } })
    expect(wrongKey.code).toBe(1)
    expect(wrongKey.stderr).toMatch(/master key does not open the secrets store/)
    expect(wrongKey.stderr.trim().split('\n')).toHaveLength(1) // no stack trace
    expect(await secrets(['list'], { env: { BOUNCER_MASTER_KEY: '' } })).toMatchObject({ code: 1, stderr: expect.stringContaining('BOUNCER_MASTER_KEY is not set') })
    const noStore = await writeConfig('no-store', undefined)
    expect(await secrets(['list'], { config: noStore })).toMatchObject({ code: 1, stderr: expect.stringContaining('configures no secrets store') })
  })

  it('refuses to write to a read-only provider', async () => {
    const envStore = await writeConfig('env-store', { store: { type: 'env' } })
    const result = await secrets(['put', 'x'], { config: envStore, input: 'value' })
    expect(result.code).toBe(1)
    expect(result.stderr).toMatch(/read-only/)
    expect(await secrets(['list'], { config: envStore, env: { ...env, BOUNCER_SECRET_SALES_TOKEN: 'v' } })).toMatchObject({ code: 0, stdout: expect.stringContaining('sales-token') })
  })

  it('makes a new key pair for the assertion signing key, and refuses a value that is not one', async () => {
    expect(await secrets(['put', 'bouncer.assertion-key'], { input: 'not-a-key' })).toMatchObject({ code: 1, stderr: expect.stringContaining('rotate it with') })
    expect(await secrets(['rotate', 'bouncer.assertion-key'])).toMatchObject({ code: 0, stdout: expect.stringContaining('version 1 is current') })
    expect((await secrets(['rotate', 'bouncer.assertion-key'])).code).toBe(0)
    expect((await secrets(['versions', 'bouncer.assertion-key'])).stdout.trim().split('\n')).toHaveLength(2)
  })

  it('makes a new key pair for the token exchange signing key, and takes only a key for it', async () => {
    expect(await secrets(['put', 'bouncer.exchange-key'], { input: 'not-a-key' })).toMatchObject({ code: 1, stderr: expect.stringContaining('rotate it with "bouncer secrets rotate bouncer.exchange-key"') })
    expect(await secrets(['rotate', 'bouncer.exchange-key'])).toMatchObject({ code: 0, stdout: expect.stringContaining('version 1 is current') })
    const pem = generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey.export({ format: 'pem', type: 'pkcs8' }) as string
    expect(await secrets(['put', 'bouncer.exchange-key'], { input: pem })).toMatchObject({ code: 0, stdout: expect.stringContaining('version 2 is current') })
  })
})
