// Commands that only read (or revoke what is not there) write nothing (the CLI probe): `keys list`
// and `sessions list` made data/ and a SQLite store beside the config, so run once by root they left
// files owned by root that the gateway's own user could not open at its next start.
import { mkdtemp, readdir, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { stringify } from 'yaml'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { runCliInProcess } from '../helpers/cli-in-process.ts'

let dir: string
let file: string

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'bouncer-adm4-read-only-'))
  file = join(dir, 'bouncer.yaml')
  // The stores' default paths (./data/… beside the config); audit keeps records in ./data/audit.db.
  await writeFile(file, stringify({
    api_keys: { store: 'sqlite' },
    issuers: [{ name: 'sso', issuer: 'https://sso.example/', audiences: ['api'] }],
    sign_in: { issuer: 'sso', client_id: 'bouncer', client_secret: 'a-client-secret-of-some-length', base_url: 'https://gw.example', session: { store: 'sqlite' } },
    upstreams: [{ name: 'app', url: 'http://127.0.0.1:9' }],
    routes: [{ id: 'data', path: '/data/*', upstream: 'app', accept: ['api_key'] }],
  }))
})

afterAll(() => rm(dir, { recursive: true, force: true }))

describe('read-only commands on a config whose stores are not made yet', { timeout: 60_000 }, () => {
  it('keys list and sessions list answer none, and make no store', async () => {
    expect(await runCliInProcess(['keys', 'list', '--config', file])).toEqual({ code: 0, stdout: 'no API keys\n', stderr: '' })
    expect(await runCliInProcess(['keys', 'list', '--json', '--config', file])).toEqual({ code: 0, stdout: '', stderr: '' })
    expect(await runCliInProcess(['sessions', 'list', '--config', file])).toEqual({ code: 0, stdout: 'no sessions\n', stderr: '' })
    expect(await readdir(dir)).toEqual(['bouncer.yaml'])
  })

  it('revoking what is not there says so, and makes neither the store nor the audit log', async () => {
    const key = await runCliInProcess(['keys', 'revoke', '--config', file, '0123456789abcdef'])
    expect(key).toEqual({ code: 1, stdout: '', stderr: `bouncer: no API key 0123456789abcdef: there is no API key store at ${join(dir, 'data', 'api-keys.db')} yet\n` })
    const session = await runCliInProcess(['sessions', 'revoke', '--config', file, '0123456789abcdef0123456789abcdef'])
    expect(session).toEqual({ code: 1, stdout: '', stderr: `bouncer: no session 0123456789abcdef0123456789abcdef: there is no session store at ${join(dir, 'data', 'sessions.db')} yet\n` })
    expect(await runCliInProcess(['sessions', 'revoke', '--config', file, '--subject', 'alice'])).toEqual({ code: 0, stdout: 'ended 0 sessions of alice\n', stderr: '' })
    expect(await readdir(dir)).toEqual(['bouncer.yaml'])
  })

  it('keys create still makes the store, and keys list then reads it', async () => {
    const created = await runCliInProcess(['keys', 'create', '--config', file, '--principal', 'reports'])
    expect(created.code, created.stderr).toBe(0)
    const listed = await runCliInProcess(['keys', 'list', '--json', '--config', file])
    expect(listed.stdout).toContain('"principal":"reports"')
  })
})
