// Checks of the files and directories the gateway writes (the audit log, its spill directory and
// checkpoints, the stores): one that cannot be made there is said by `check`, rather than found by
// the audit worker, which failed and was restarted for ever (a `spill_dir` naming a file: a probe).
// A store or the spill directory that cannot be made refuses the start; an audit sink is a warning:
// records spill while it cannot open, and it is opened again until it can (a volume mounted late).
import { accessSync, constants, readFileSync, realpathSync, statfsSync, statSync } from 'node:fs'
import { dirname } from 'node:path'
import type { ConfigPath, Finding } from './diagnostics.ts'
import type { Config } from './schema.ts'
import { spillDiskBytes } from './spill-room.ts'
import { workerCount } from './workers-checks.ts'

/** File systems the kernel makes up: no file or directory of the gateway's can be made in them. */
const VIRTUAL_FILE_SYSTEMS = ['/proc', '/sys']

type Kind = 'file' | 'directory'
/** What else a path may name: the gateway reads and writes regular files, and a named pipe held its thread for ever (found by an adversarial probe). */
type Special = 'named pipe' | 'device' | 'socket'

export function dataPathFindings(config: Config): Finding[] {
  const findings: Finding[] = []
  const check = (path: ConfigPath, value: string, kind: Kind) => {
    const problem = dataPathProblem(value, kind)
    if (problem) findings.push({ severity: 'error', path, message: problem })
  }
  config.audit.sinks.forEach((sink, i) => {
    const problem = sink.type === 'sqlite' ? dataPathProblem(sink.path, 'file') : null
    if (problem) findings.push({ severity: 'warning', path: ['audit', 'sinks', i, 'path'], message: `${problem}: the sink cannot open, and its records spill to spill_dir until it can` })
  })
  if (config.audit.sinks.length > 0) {
    check(['audit', 'spill_dir'], config.audit.spill_dir, 'directory')
    const room = fileSystemBytes(config.audit.spill_dir)
    const workers = workerCount(config.server)
    const most = spillDiskBytes(config.audit, workers)
    if (room !== null && room < most) {
      const past = most === config.audit.spill_max_bytes ? '' : ` (with the room on_spill_full: refuse keeps past the cap${workers > 1 ? `, for each of ${workers} workers` : ''})`
      findings.push({ severity: 'warning', path: ['audit', 'spill_max_bytes'], message: `the spill files may hold ${most} bytes${past}, more than the file system of spill_dir holds (${room}): the disk fills before the cap applies, and records are lost whatever on_spill_full says` })
    }
  }
  if (config.audit.checkpoint_path !== undefined) {
    check(['audit', 'checkpoint_path'], config.audit.checkpoint_path, 'file')
    // Its signing key is kept beside it (audit/checkpoint-key.ts), unless the secrets store holds it.
    const keyProblem = dataPathProblem(`${config.audit.checkpoint_path}.key`, 'file')
    if (keyProblem) findings.push({ severity: 'error', path: ['audit', 'checkpoint_path'], message: `the checkpoint key file: ${keyProblem}` })
  }
  if (config.api_keys?.store.type === 'sqlite') check(['api_keys', 'store', 'path'], config.api_keys.store.path, 'file')
  if (config.sign_in?.session.store.type === 'sqlite') check(['sign_in', 'session', 'store', 'path'], config.sign_in.session.store.path, 'file')
  // Opened at the first call that waits for a person: with no approvals, never (a review).
  if (config.mcp && config.mcp.approvals.length > 0) check(['mcp', 'approvals_store', 'path'], config.mcp.approvals_store.path, 'file')
  if (config.secrets?.store.type === 'embedded') check(['secrets', 'store', 'path'], config.secrets.store.path, 'file')
  return findings
}

/** The size of the file system `path` is on (or would be made on), or null when unknown. */
function fileSystemBytes(path: string): number | null {
  let at = path
  for (; kindAt(at) === null && dirname(at) !== at; at = dirname(at));
  try {
    const fs = statfsSync(at)
    return fs.blocks * fs.bsize
  } catch {
    return null
  }
}

/** Why the gateway cannot make or use a `kind` at `path`, or null. Only what is certain: access is the running user's, not check's. */
export function dataPathProblem(path: string, kind: Kind): string | null {
  const found = kindAt(path)
  if (found === 'unreadable') return null
  if (found !== null) return found === kind ? null : `${path} is a ${found}, not a ${kind}`
  // Nothing there yet: the gateway makes it, and the directories above, from the nearest that exists.
  let above = dirname(path)
  for (; kindAt(above) === null && dirname(above) !== above; above = dirname(above));
  const existing = kindAt(above)
  if (existing !== null && existing !== 'directory' && existing !== 'unreadable') return `${path} cannot be made: ${above} is a ${existing}, not a directory`
  if (existing !== 'directory') return null
  const real = realpathSync(above)
  const virtual = VIRTUAL_FILE_SYSTEMS.find((root) => real === root || real.startsWith(`${root}/`))
  if (virtual !== undefined) return `${path} cannot be made: ${virtual} is a file system the kernel makes up, where no ${kind} of the gateway's can be made`
  // Read-only for every user, the running one too (a container's read-only root, the systemd unit's
  // ProtectSystem=strict): a default ./data/… beside /etc/bouncer/bouncer.yaml passed check and
  // then failed the start as an "internal error" (EROFS), found by an adversarial probe.
  return onReadOnlyFileSystem(real) ? `${path} cannot be made: ${above} is on a read-only file system (give it a path on a writable volume)` : null
}

/**
 * Whether `real` (a real path) is on a read-only mount. access() says EROFS only to a user the
 * permissions would let write (root, mostly); to others it says EACCES first, so the mount table
 * (Linux: /proc/self/mountinfo, the mount's own options and its file system's) is asked as well.
 */
export function onReadOnlyFileSystem(real: string, mountinfo: string | null = ownMountinfo()): boolean {
  try {
    accessSync(real, constants.W_OK)
    return false
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'EROFS') return true
  }
  if (mountinfo === null) return false
  // "36 35 98:0 /root /mount/point rw,noatime master:1 - ext4 /dev/sda1 rw,errors=continue": the
  // nearest mount point above `real`, the last of those at the same point (mounted over the others).
  let nearest: { point: string; readOnly: boolean } | null = null
  for (const line of mountinfo.split('\n')) {
    const fields = line.split(' ')
    const separator = fields.indexOf('-')
    if (separator < 6) continue
    const point = (fields[4] as string).replace(/\\([0-7]{3})/g, (_, octal: string) => String.fromCharCode(parseInt(octal, 8)))
    if (!(real === point || real.startsWith(point === '/' ? '/' : `${point}/`))) continue
    if (nearest !== null && point.length < nearest.point.length) continue
    const readOnly = (fields[5] as string).split(',').includes('ro') || (fields[separator + 3] ?? '').split(',').includes('ro')
    nearest = { point, readOnly }
  }
  return nearest?.readOnly === true
}

function ownMountinfo(): string | null {
  try {
    return readFileSync('/proc/self/mountinfo', 'utf8')
  } catch {
    return null
  }
}

function kindAt(path: string): Kind | Special | 'unreadable' | null {
  try {
    const stat = statSync(path)
    if (stat.isDirectory()) return 'directory'
    if (stat.isFIFO()) return 'named pipe'
    if (stat.isCharacterDevice() || stat.isBlockDevice()) return 'device'
    if (stat.isSocket()) return 'socket'
    return 'file'
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code
    if (code === 'ENOENT') return null
    // ENOTDIR: a file above it, which the walk up finds; else (EACCES…) the start says what it meets.
    return code === 'ENOTDIR' ? null : 'unreadable'
  }
}
