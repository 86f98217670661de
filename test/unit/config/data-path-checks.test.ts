// Found by an operations probe: a `spill_dir` naming a file passed `bouncer check`, and the audit
// worker then failed at every start of it (restarted for ever); an audit log under /proc held the
// start itself (Node's recursive mkdir never returned there). `check` now says where the gateway
// cannot make what it writes.
import { spawnSync } from 'node:child_process'
import { chmodSync, mkdirSync, statfsSync, writeFileSync } from 'node:fs'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { stringify } from 'yaml'
import { afterAll, beforeAll, expect, it } from 'vitest'
import { onReadOnlyFileSystem } from '../../../src/config/data-path-checks.ts'
import { loadConfigText, refuseHeadroom, spillDiskBytes } from '../../../src/config/index.ts'
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
    .filter((d) => /cannot be made|is a (file|directory|named pipe|device|socket), not/.test(d.message))
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


// Found by an adversarial probe: a named pipe as audit.checkpoint_path passed check, and the audit
// worker's read of it (and of the key file beside it) waited for a writer for ever.
it('refuses a checkpoint_path, or the key file beside it, that is a named pipe or a device', () => {
  const pipe = join(dir, 'checkpoints.pipe')
  expect(spawnSync('mkfifo', [pipe]).status).toBe(0)
  expect(spawnSync('mkfifo', [join(dir, 'a-dir', 'checkpoints.key')]).status).toBe(0)
  const audit = { sinks: [] }
  expect(findings({ audit: { ...audit, checkpoint_path: pipe } })).toEqual([`error: ${pipe} is a named pipe, not a file`])
  expect(findings({ audit: { ...audit, checkpoint_path: '/dev/zero' } })).toEqual(['error: /dev/zero is a device, not a file'])
  expect(findings({ audit: { ...audit, checkpoint_path: join(dir, 'a-dir', 'checkpoints') } }))
    .toEqual([`error: the checkpoint key file: ${join(dir, 'a-dir', 'checkpoints.key')} is a named pipe, not a file`])
})


/**
 * A command run where `mountPoint` is a read-only mount of its own, mode 755 (a mount namespace; a
 * user namespace too when not root), read-only as a pod's volumes and root are: the mount, not its
 * file system. As root, the command runs as `nobody`, as the gateway runs in a pod: to a user who
 * may not write there, access() answers EACCES there, not EROFS.
 */
function withReadOnlyMount(mountPoint: string, command: string[]): { status: number | null; stdout: string; stderr: string } {
  const asRoot = process.getuid?.() === 0
  const quoted = [...(asRoot ? ['setpriv', '--reuid', '65534', '--regid', '65534', '--clear-groups'] : []), ...command].map((arg) => `'${arg.replace(/'/g, `'\\''`)}'`).join(' ')
  return spawnSync('unshare', [...(asRoot ? ['-m'] : ['-r', '-m']), '--propagation', 'private', 'sh', '-c', `mount -t tmpfs -o mode=755 tmpfs '${mountPoint}' && mount -o remount,bind,ro '${mountPoint}' && exec ${quoted}`], { encoding: 'utf8' })
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
  chmodSync(dir, 0o755) // the config readable by `nobody`
  const config = join(dir, 'ro-config.yaml')
  writeFileSync(config, stringify({ ...ROUTES, audit: { sinks: [{ type: 'sqlite', path: join(dir, 'audit.db') }], spill_dir: join(ro, 'spill') }, api_keys: { store: { type: 'sqlite', path: join(ro, 'data', 'api-keys.db') } } }))
  const check = withReadOnlyMount(ro, [process.execPath, BIN, 'check', '--config', config])
  expect(check.status).toBe(1)
  expect(check.stdout).toBe('')
  expect(check.stderr).toContain(`api_keys.store.path: ${join(ro, 'data', 'api-keys.db')} cannot be made: ${ro} is on a read-only file system`)
  expect(check.stderr).toContain(`audit.spill_dir: ${join(ro, 'spill')} cannot be made: ${ro} is on a read-only file system`)
})

it('reads a read-only mount from the mount table: the nearest mount point, its own options or its file system\'s', () => {
  const at = '/nonexistent-bouncer-probe' // nothing there: access() says ENOENT, the table decides
  const table = [
    '22 1 0:21 / / rw,relatime - ext4 /dev/sda1 rw',
    `30 22 0:40 / ${at}/config ro,relatime - tmpfs tmpfs rw`,
    `31 22 0:41 / ${at}/state rw,relatime - ext4 /dev/sdb ro`,
    `32 22 0:42 / ${at}/with\\040space ro - tmpfs tmpfs rw`,
    `33 22 0:43 / ${at}/over rw - tmpfs tmpfs rw`,
    `34 33 0:44 / ${at}/over ro - tmpfs tmpfs rw`, // mounted over the writable one
    '',
  ].join('\n')
  expect(onReadOnlyFileSystem(`${at}/elsewhere/data`, table)).toBe(false)
  expect(onReadOnlyFileSystem(`${at}/config/data`, table)).toBe(true)
  expect(onReadOnlyFileSystem(`${at}/configured/data`, table)).toBe(false) // not under /config
  expect(onReadOnlyFileSystem(`${at}/state`, table)).toBe(true) // its file system is read-only
  expect(onReadOnlyFileSystem(`${at}/with space/data`, table)).toBe(true)
  expect(onReadOnlyFileSystem(`${at}/over/data`, table)).toBe(true)
  expect(onReadOnlyFileSystem(`${at}/x`, table.replace('/ / rw', '/ / ro'))).toBe(true)
  expect(onReadOnlyFileSystem(`${at}/x`, null)).toBe(false)
})

it('warns when spill_max_bytes is more than the file system of spill_dir holds: the disk would fill before the cap', () => {
  const sinks = [{ type: 'postgres', url: 'postgres://127.0.0.1:9/x' }]
  const spill = (max: number, onFull = 'drop') => loadConfigText(stringify({ ...ROUTES, audit: { sinks, spill_dir: join(dir, 'not-made-yet', 'spill'), spill_max_bytes: max, on_spill_full: onFull } }), join(dir, 'bouncer.yaml'), { MASTER: 'k'.repeat(44) }).diagnostics
    .filter((d) => d.path.join('.') === 'audit.spill_max_bytes')
    .map((d) => `${d.severity}: ${d.message}`)
  const size = statfsSync(dir).blocks * statfsSync(dir).bsize
  expect(spill(size + 1)).toEqual([`warning: the spill files may hold ${size + 1} bytes, more than the file system of spill_dir holds (${size}): the disk fills before the cap applies, and records are lost whatever on_spill_full says`])
  expect(spill(1_048_576)).toEqual([])
  expect(spill(1_048_576, 'refuse')).toEqual([])
})

// A probe: under refuse (the default) the files take the cap and its headroom, and a cap just inside
// the file system passed the check while the headroom past it would fill the disk.
it('counts the headroom of on_spill_full: refuse past the cap, and each worker\'s', () => {
  const sinks = [{ type: 'postgres', url: 'postgres://127.0.0.1:9/x' }]
  const size = statfsSync(dir).blocks * statfsSync(dir).bsize
  const max = size - 1_048_576
  const found = loadConfigText(stringify({ ...ROUTES, audit: { sinks, spill_dir: join(dir, 'spill'), spill_max_bytes: max } }), join(dir, 'bouncer.yaml'), { MASTER: 'k'.repeat(44) }).diagnostics
    .filter((d) => d.path.join('.') === 'audit.spill_max_bytes')
    .map((d) => `${d.severity}: ${d.message}`)
  expect(found).toEqual([`warning: the spill files may hold ${max + refuseHeadroom(max)} bytes (with the room on_spill_full: refuse keeps past the cap), more than the file system of spill_dir holds (${size}): the disk fills before the cap applies, and records are lost whatever on_spill_full says`])
  // 1 GiB over 64 workers: 16 MiB each, and 8 MiB of headroom each, half the cap again.
  expect(spillDiskBytes({ spill_max_bytes: 1_073_741_824, on_spill_full: 'refuse' }, 64)).toBe(1_073_741_824 + 64 * 8 * 1_048_576)
  expect(spillDiskBytes({ spill_max_bytes: 1_073_741_824, on_spill_full: 'refuse' }, 1)).toBe(1_073_741_824 + 107_374_182)
  expect(spillDiskBytes({ spill_max_bytes: 1_073_741_824, on_spill_full: 'drop' }, 64)).toBe(1_073_741_824)
})
