// Found by an operations probe: a `spill_dir` naming a file passed `bouncer check`, and the audit
// worker then failed at every start of it (restarted for ever); an audit log under /proc held the
// start itself (Node's recursive mkdir never returned there). `check` now says where the gateway
// cannot make what it writes.
import { spawnSync } from 'node:child_process'
import { mkdirSync, writeFileSync } from 'node:fs'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { stringify } from 'yaml'
import { afterAll, beforeAll, expect, it } from 'vitest'
import { loadConfigText } from '../../../src/config/index.ts'
import { BIN } from '../../helpers/cli.ts'

let dir: string
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'bouncer-data-paths-'))
  writeFileSync(join(dir, 'a-file'), 'x')
  mkdirSync(join(dir, 'a-dir'))
})
afterAll(async () => {
  await rm(dir, { recursive: true, force: true })
})

const ROUTES = { upstreams: [{ name: 'a', url: 'http://127.0.0.1:9' }], routes: [{ id: 'r', path: '/x', upstream: 'a', public: true }] }

function findings(config: Record<string, unknown>): string[] {
  return loadConfigText(stringify({ ...ROUTES, ...config }), join(dir, 'bouncer.yaml'), { MASTER: 'k'.repeat(44) }).diagnostics
    .filter((d) => /cannot be made|is a (file|directory), not/.test(d.message))
    .map((d) => `${d.severity}: ${d.message}`)
}

it('refuses a spill_dir that is a file, or under one, or under /proc', () => {
  const sinks = [{ type: 'sqlite', path: join(dir, 'audit.db') }]
  expect(findings({ audit: { sinks, spill_dir: join(dir, 'a-file') } })).toEqual([`error: ${join(dir, 'a-file')} is a file, not a directory`])
  expect(findings({ audit: { sinks, spill_dir: join(dir, 'a-file', 'spill') } })).toEqual([`error: ${join(dir, 'a-file', 'spill')} cannot be made: ${join(dir, 'a-file')} is a file, not a directory`])
  expect(findings({ audit: { sinks, spill_dir: '/proc/bouncer/spill' } })).toEqual(['error: /proc/bouncer/spill cannot be made: /proc is a file system the kernel makes up, where no directory of the gateway\'s can be made'])
  // No sink, no spill directory: nothing is written there.
  expect(findings({ audit: { sinks: [], spill_dir: join(dir, 'a-file') } })).toEqual([])
})

it('warns of an audit sink that cannot open (its records spill until it can)', () => {
  expect(findings({ audit: { sinks: [{ type: 'sqlite', path: join(dir, 'a-dir') }], spill_dir: join(dir, 'spill') } }))
    .toEqual([`warning: ${join(dir, 'a-dir')} is a directory, not a file: the sink cannot open, and its records spill to spill_dir until it can`])
  expect(findings({ audit: { sinks: [{ type: 'sqlite', path: '/proc/bouncer/audit.db' }], spill_dir: join(dir, 'spill') } })).toHaveLength(1)
})

it('refuses a store whose file cannot be made', () => {
  const audit = { sinks: [] }
  expect(findings({ audit, api_keys: { store: { type: 'sqlite', path: join(dir, 'a-file', 'keys.db') } } })).toEqual([`error: ${join(dir, 'a-file', 'keys.db')} cannot be made: ${join(dir, 'a-file')} is a file, not a directory`])
  expect(findings({ audit, secrets: { store: { type: 'embedded', path: join(dir, 'a-dir'), master_key: 'env:MASTER' } } })).toEqual([`error: ${join(dir, 'a-dir')} is a directory, not a file`])
})

it('checks the approvals store only where calls wait for approval: it is opened then, never else', () => {
  const audit = { sinks: [] }
  const issuers = [{ name: 'idp', issuer: 'https://idp.example', audiences: ['bouncer'] }]
  const mcp = { resource: 'https://gw.example/mcp', approvals_store: { type: 'sqlite', path: join(dir, 'a-dir') } }
  expect(findings({ audit, issuers, mcp })).toEqual([])
  expect(findings({ audit, issuers, mcp: { ...mcp, approvals: [{ tools: ['*'], approvers: ['admin'] }] } })).toEqual([`error: ${join(dir, 'a-dir')} is a directory, not a file`])
})

it('takes paths that exist as what they should be, or can be made', () => {
  expect(findings({
    audit: { sinks: [{ type: 'sqlite', path: join(dir, 'new', 'deeper', 'audit.db') }], spill_dir: join(dir, 'a-dir'), checkpoint_path: join(dir, 'a-file') },
    api_keys: { store: { type: 'sqlite', path: join(dir, 'a-file') } },
  })).toEqual([])
})


/** A command run where `mountPoint` is a read-only file system of its own (a mount namespace; a user namespace too when not root). */
function withReadOnlyMount(mountPoint: string, command: string[]): { status: number | null; stdout: string; stderr: string } {
  const quoted = command.map((arg) => `'${arg.replace(/'/g, `'\\''`)}'`).join(' ')
  const namespaces = process.getuid?.() === 0 ? ['-m'] : ['-r', '-m']
  return spawnSync('unshare', [...namespaces, '--propagation', 'private', 'sh', '-c', `mount -t tmpfs -o ro tmpfs '${mountPoint}' && exec ${quoted}`], { encoding: 'utf8' })
}
const readOnlyMounts = process.platform === 'linux' && (() => {
  const probe = join(tmpdir(), `bouncer-ro-probe-${process.pid}`)
  mkdirSync(probe, { recursive: true })
  try {
    return withReadOnlyMount(probe, ['true']).status === 0
  } finally {
    spawnSync('rmdir', [probe])
  }
})()

// Found by an adversarial probe: in the Kubernetes pod (read-only root, the ConfigMap at
// /etc/bouncer) `api_keys: { store: sqlite }` passed check, its default ./data/api-keys.db beside the
// config, and serve then ended in "internal error: … EROFS: read-only file system".
it.runIf(readOnlyMounts)('refuses a store or spill directory to be made on a read-only file system', () => {
  const ro = join(dir, 'ro')
  mkdirSync(ro)
  const config = join(dir, 'ro-config.yaml')
  writeFileSync(config, stringify({ ...ROUTES, audit: { sinks: [{ type: 'sqlite', path: join(dir, 'audit.db') }], spill_dir: join(ro, 'spill') }, api_keys: { store: { type: 'sqlite', path: join(ro, 'data', 'api-keys.db') } } }))
  const check = withReadOnlyMount(ro, [process.execPath, BIN, 'check', '--config', config])
  expect(check.status).toBe(1)
  expect(check.stdout).toBe('')
  expect(check.stderr).toContain(`api_keys.store.path: ${join(ro, 'data', 'api-keys.db')} cannot be made: ${ro} is on a read-only file system`)
  expect(check.stderr).toContain(`audit.spill_dir: ${join(ro, 'spill')} cannot be made: ${ro} is on a read-only file system`)
})
