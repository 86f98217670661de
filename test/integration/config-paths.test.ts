// Relative paths in a config start from the config file's folder, not from where the gateway was
// started: `bouncer serve --config /etc/bouncer/bouncer.yaml` run from / keeps its audit log, spill
// files and secrets next to the file, and every command reading that file finds them there.
import { randomBytes } from 'node:crypto'
import { existsSync } from 'node:fs'
import { mkdir, mkdtemp, readdir, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { request } from 'undici'
import { stringify } from 'yaml'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { searchAudit } from '../../src/audit/search.ts'
import { startServe } from '../helpers/cli.ts'
import { runCliInProcess } from '../helpers/cli-in-process.ts'
import { startUpstream, type TestUpstream } from '../helpers/upstream.ts'
import { waitFor } from '../helpers/wait.ts'

let dir: string
let configDir: string
let elsewhere: string
let upstream: TestUpstream

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'bouncer-paths-'))
  configDir = join(dir, 'etc', 'bouncer')
  elsewhere = join(dir, 'srv')
  await mkdir(join(configDir, 'keys'), { recursive: true })
  await mkdir(elsewhere, { recursive: true })
  await writeFile(join(configDir, 'keys', 'master.key'), `${randomBytes(32).toString('base64')}\n`, { mode: 0o600 })
  upstream = await startUpstream()
})

afterAll(async () => {
  await upstream?.close()
  await rm(dir, { recursive: true, force: true })
})

function config(secrets: object): Record<string, unknown> {
  return {
    server: { listen: '127.0.0.1:0' },
    admin: { listen: '127.0.0.1:0', token: '${secret:admin-token}' },
    upstreams: [{ name: 'api', url: upstream.url }],
    routes: [{ id: 'open', path: '/open/*', upstream: 'api', public: true }],
    audit: { sinks: [{ type: 'sqlite', path: './data/audit.db' }], spill_dir: './data/spill', flush_interval: '10ms' },
    secrets,
  }
}

describe('relative paths in the config', () => {
  it('start from the config file\'s folder for serve, secrets and audit, whatever the working directory', async () => {
    const file = join(configDir, 'bouncer.yaml')
    await writeFile(file, stringify(config({ store: { type: 'embedded', path: './data/secrets.db', master_key: 'file:./keys/master.key' } })))

    const put = await runCliInProcess(['secrets', 'put', 'admin-token', '--config', file], { cwd: elsewhere, input: 'admin-token-0123456789' })
    expect(put.code, put.stderr).toBe(0)
    const gw = await startServe(['--config', file], { cwd: elsewhere })
    try {
      const res = await request(`${gw.url}/open/x`, { headers: { 'x-request-id': 'from-elsewhere' } })
      expect(res.statusCode).toBe(200)
      await res.body.dump()
      const auditDb = join(configDir, 'data', 'audit.db')
      // The file exists a moment before the worker has created its table: until then there is nothing to read.
      const recorded = () => searchAudit({ type: 'sqlite', path: auditDb }, { limit: 5 }).then((records) => records.some((r) => r.request_id === 'from-elsewhere'), () => false)
      await waitFor(async () => existsSync(auditDb) && (await recorded()), 'the record in the audit log next to the config', 20_000)
      // The admin token came from the store next to the config, opened with the key next to it.
      const routes = await request(`${gw.adminUrl}/api/routes`, { headers: { authorization: 'Bearer admin-token-0123456789' } })
      expect(routes.statusCode).toBe(200)
      await routes.body.dump()
    } finally {
      expect(await gw.stop()).toBe(0)
    }
    expect((await readdir(join(configDir, 'data'))).sort()).toEqual(expect.arrayContaining(['audit.db', 'secrets.db', 'spill']))
    expect(existsSync(join(elsewhere, 'data'))).toBe(false)

    // Another command, from yet another directory, reads the same log.
    const audit = await runCliInProcess(['audit', '--config', file, '--json'], { cwd: dir })
    expect(audit.code, audit.stderr).toBe(0)
    expect(audit.stdout).toContain('"request_id":"from-elsewhere"')
  })

  it('a file secrets store\'s dir starts from the config file\'s folder too', async () => {
    await mkdir(join(configDir, 'mounted'), { recursive: true })
    await writeFile(join(configDir, 'mounted', 'admin-token'), 'admin-token-from-a-file\n')
    const file = join(configDir, 'file-store.yaml')
    await writeFile(file, stringify(config({ store: { type: 'file', dir: './mounted' } })))
    const check = await runCliInProcess(['check', '--config', file], { cwd: elsewhere })
    expect(check.stdout.trim().split('\n').at(-1), check.stdout).toBe('ok')
    expect(check.code).toBe(0)
  })
})
