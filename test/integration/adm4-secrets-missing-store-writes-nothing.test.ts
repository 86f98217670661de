// `bouncer secrets delete` and `secrets rekey` on an embedded store that is not there (a mistyped
// path, a throwaway directory): they opened the audit log before the store, so they left data/ and
// audit.db beside the config, then said there was no store (the CLI probe).
import { randomBytes } from 'node:crypto'
import { mkdtemp, readdir, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { runCliInProcess } from '../helpers/cli-in-process.ts'

let dir: string
let file: string
const env = { BOUNCER_MASTER_KEY: randomBytes(32).toString('base64'), BOUNCER_CONFIG: '' }

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'bouncer-adm4-secrets-missing-'))
  file = join(dir, 'bouncer.yaml')
  // The audit log's default: ./data/audit.db beside the config.
  await writeFile(file, 'secrets: { store: { type: embedded, path: ./data/secrets.db, master_key: env:BOUNCER_MASTER_KEY } }\n')
})

afterAll(() => rm(dir, { recursive: true, force: true }))

describe('secrets commands on an embedded store that is not there', { timeout: 60_000 }, () => {
  const missing = () => `bouncer: there is no secrets store at ${join(dir, 'data', 'secrets.db')} (secrets.store.path)\n`

  it('delete and rekey say so, and make neither the store nor the audit log', async () => {
    expect(await runCliInProcess(['secrets', 'delete', 'sales-token', '--config', file], { env })).toEqual({ code: 1, stdout: '', stderr: missing() })
    expect(await runCliInProcess(['secrets', 'rekey', '--drop-previous', '--config', file], { env })).toEqual({ code: 1, stdout: '', stderr: missing() })
    expect(await readdir(dir)).toEqual(['bouncer.yaml'])
  })

  it('once put, delete still deletes, with its audit record', async () => {
    const put = await runCliInProcess(['secrets', 'put', 'sales-token', '--config', file], { env, input: 'a-token-of-some-length' })
    expect(put.code, put.stderr).toBe(0)
    expect(await runCliInProcess(['secrets', 'delete', 'sales-token', '--config', file], { env })).toEqual({ code: 0, stdout: 'deleted sales-token\n', stderr: '' })
    expect(await runCliInProcess(['secrets', 'delete', 'sales-token', '--config', file], { env })).toMatchObject({ code: 1, stderr: 'bouncer: no secret sales-token\n' })
    const records = await runCliInProcess(['audit', '--json', '--config', file], { env })
    expect(records.stdout).toContain('Deleted secret sales-token and all its versions.')
  })
})
