// The command line around people and keys (a probe): `bouncer keys revoke` invited the whole key
// on the command line, where ps and the shell history keep its secret; `bouncer check` said nothing
// when sign-in builds its redirect URI from whatever Host a request names.
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { stringify } from 'yaml'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { loadConfigText } from '../../src/config/index.ts'
import { runCliInProcess } from '../helpers/cli-in-process.ts'

let dir: string
let file: string

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'bouncer-people-cli-'))
  file = join(dir, 'bouncer.yaml')
  await writeFile(file, stringify({
    api_keys: { store: { type: 'sqlite', path: join(dir, 'keys.db') } },
    upstreams: [{ name: 'app', url: 'http://127.0.0.1:9' }],
    routes: [{ id: 'data', path: '/data/*', upstream: 'app', accept: ['api_key'] }],
  }))
})

afterAll(() => rm(dir, { recursive: true, force: true }))

describe('bouncer keys revoke', { timeout: 60_000 }, () => {
  it('asks for the id, never the whole key', async () => {
    const bad = await runCliInProcess(['keys', 'revoke', '--config', file, 'nope'])
    expect(bad).toMatchObject({ code: 2, stderr: 'bouncer: give the key\'s id as keys list shows it (16 hex digits), or bk_<id>\n' })
    const help = await runCliInProcess(['keys', 'revoke', '--help'])
    expect(help.stdout).toMatch(/never\s+the\s+whole\s+key/)
  })

  it('given the whole key, still revokes it (it is dead once revoked) and warns that its secret is in the history', async () => {
    const key = (await runCliInProcess(['keys', 'create', '--config', file, '--principal', 'leaked'])).stdout.trim()
    const id = key.slice(3, 19)
    const revoked = await runCliInProcess(['keys', 'revoke', '--config', file, key])
    expect(revoked.code, revoked.stderr).toBe(0)
    expect(revoked.stdout).toContain(`revoked API key ${id} (principal leaked)`)
    expect(revoked.stderr).toBe(`warning: the whole key was given, so its secret is in this shell's history and was visible to ps; next time give its id, bk_${id}\n`)
    expect(revoked.stderr).not.toContain(key.slice(20))
    // By its id: no warning.
    expect(await runCliInProcess(['keys', 'revoke', '--config', file, `bk_${id}`])).toMatchObject({ code: 0, stderr: '' })
  })

  it('a whole key this store does not know: the answer says the secret may still work elsewhere', async () => {
    const unknown = await runCliInProcess(['keys', 'revoke', '--config', file, `bk_0123456789abcdef_${'a'.repeat(64)}`])
    expect(unknown.code).toBe(1)
    expect(unknown.stderr).toContain('bouncer: no API key 0123456789abcdef in this store: if the key is real it still works elsewhere')
  })
})

describe('bouncer check: sign-in without base_url or server.hosts', () => {
  const config = (server: string, signIn = '') => `server: { ${server} }
issuers:
  - { name: sso, issuer: "https://sso.example.com", audiences: [api://bouncer] }
upstreams: [{ name: app, url: "http://127.0.0.1:9" }]
routes:
  - { id: app, path: /app/*, upstream: app, accept: [session] }
sign_in: { issuer: sso, client_id: bouncer, session: { store: memory }${signIn} }
`
  const warnings = (text: string) => loadConfigText(text, join(dir, 'check.yaml'), {}).diagnostics.filter((d) => d.severity === 'warning').map((d) => d.message)
  const WARNING = 'neither sign_in.base_url nor server.hosts is set: the request\'s Host header chooses the sign-in\'s redirect URI and the origin state-changing requests must come from; set one of them'

  it('warns on a listener others reach, or behind a proxy', () => {
    expect(warnings(config('listen: "0.0.0.0:8080"'))).toContain(WARNING)
    expect(warnings(config('listen: "127.0.0.1:8080", trusted_proxies: [10.0.0.0/8]'))).toContain(WARNING)
  })

  it('not with either set, nor on a loopback listener no proxy stands before (the demo)', () => {
    expect(warnings(config('listen: "0.0.0.0:8080"', ', base_url: "https://gw.example.com"'))).not.toContain(WARNING)
    expect(warnings(config('listen: "0.0.0.0:8080", hosts: [gw.example.com]'))).not.toContain(WARNING)
    expect(warnings(config('listen: "127.0.0.1:8080"'))).not.toContain(WARNING)
  })

  it('prints it with its line and column, and still passes', { timeout: 30_000 }, async () => {
    const checked = join(dir, 'public.yaml')
    await writeFile(checked, config('listen: "0.0.0.0:8080"'))
    const result = await runCliInProcess(['check', '--config', checked])
    expect(result.code).toBe(0)
    expect(result.stderr).toMatch(/public\.yaml:7:\d+: warning: sign_in: neither sign_in\.base_url nor server\.hosts is set/)
  })
})
