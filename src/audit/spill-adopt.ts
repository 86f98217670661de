// Spill files that a gateway of another shape left behind. One process spills to `spill_dir`
// itself; with server.workers each worker spills to `spill_dir/wN` (workers/role.ts). A restart
// with another number of workers (or `auto` on another host) left the old layout's files where no
// audit worker read them: their records never reached the sink, which the checkpoints vouching
// for them made `audit verify` report as a truncated log (a probe). At start, before any audit
// worker runs, the process moves such files under its own first spill directory's `adopted/`, and
// that audit worker replays them into the same sinks (worker.ts). A record carries its chain and
// sequence number, so whichever writer replays it stores the same row. Only the spill files of the
// configured sinks move (the checkpoint file may live in spill_dir too), and an origin whose files
// moved gives up its chain (`chain.json` goes with them): that layout, run again, starts a new
// chain rather than number records again that the adopted files still hold (a review).
// One gateway owns a spill directory: `owner.json` names its host and process, and a start that
// finds it held by another live process on this host is refused (SpillDirInUse): the two went on
// with one chain (chain.json), numbered their records alike, and each sink kept one of every pair.
// The claim itself is a lock the kernel holds for the process (SQLite's, on `owner.lock`): two
// gateways starting together both read no owner and both wrote theirs (a review), and one in
// another container on the same node (another hostname, another pid namespace, one volume) was
// taken for a gateway of another host, gone. The kernel drops the lock however the process ends.
import { existsSync, readdirSync, readFileSync, renameSync, rmdirSync, statSync, unlinkSync, writeFileSync } from 'node:fs'
import { hostname } from 'node:os'
import { join, resolve } from 'node:path'
import { DatabaseSync } from 'node:sqlite'
import { isBusy, makeDirectories } from '../collections/index.ts'
import type { AuditConfig } from '../config/index.ts'
import type { Logger } from '../telemetry/index.ts'
import { CHAIN_STATE_FILE } from './chain-head.ts'
import { sinkName } from './sinks/sink.ts'
import { segmentOf, spillFileName } from './spill.ts'

const ADOPTED = 'adopted'
const WORKER_DIR = /^w([1-9][0-9]*)$/
const SPILL_FILE = /\.ndjson$/
const CHAIN_STATE = CHAIN_STATE_FILE
const OWNER = 'owner.json'
const OWNER_LOCK = 'owner.lock'

/** The spill directories this process has claimed, each by a connection that holds its lock file's exclusive lock. */
const claimed = new Map<string, DatabaseSync>()

/** The directory whose audit worker replays what was adopted: the process's own, or its first worker's. */
export function adoptingSpillDir(base: string, workers: number | null): string {
  return workers === null ? base : join(base, 'w1')
}

/** A spill_dir that another live gateway on this host owns: a start on it is refused. */
export class SpillDirInUse extends Error {
  constructor(base: string, owner: { host: string; pid: number } | null) {
    super(owner === null || owner.host !== hostname()
      ? `${base} is in use by another gateway${owner === null ? '' : ` (host ${owner.host}, process ${owner.pid})`}: give each gateway its own spill_dir`
      : `${base} is in use by another gateway on this host (process ${owner.pid}): give each gateway its own spill_dir (if process ${owner.pid} is no gateway, remove ${join(base, OWNER)})`)
    this.name = 'SpillDirInUse'
  }
}

/**
 * Claims the audit section's spill directory and adopts what it holds for another shape, and says
 * so; fails a start only when another live gateway on this host owns the directory (SpillDirInUse).
 */
export function adoptAuditSpills(audit: AuditConfig, workers: number | null, logger: Logger): void {
  if (audit.sinks.length === 0) return
  const base = resolve(audit.spill_dir)
  const owner = otherOwner(base)
  if (owner !== null) throw new SpillDirInUse(base, owner)
  try {
    makeDirectories(base)
    const lock = lockSpillDir(base)
    if (lock === 'held') throw new SpillDirInUse(base, ownerOf(base))
    // A file system whose locks do not work (some network or FUSE mounts), or a lock file this user
    // cannot make: the claim rests on owner.json alone, as it did before the lock, and says so.
    if (lock instanceof Error) logger.warn({ err: lock, spill_dir: audit.spill_dir }, `cannot lock ${join(base, OWNER_LOCK)}: the spill directory is claimed by owner.json alone (two gateways starting at once, or in two containers, are not kept apart)`)
    writeFileSync(join(base, OWNER), JSON.stringify({ host: hostname(), pid: process.pid, started: processStamp(process.pid) }))
    const files = audit.sinks.map((sink) => spillFileName(sinkName(sink.type === 'sqlite' ? { type: 'sqlite', path: resolve(sink.path) } : sink)))
    const moved = adoptOrphanedSpills(base, workers, files)
    if (moved.length > 0) {
      logger.warn({ files: moved }, `spilled audit records of a gateway with another number of workers: ${workers === null ? 'this process replays' : 'worker w1 replays'} them into their sinks`)
    }
  } catch (err) {
    if (err instanceof SpillDirInUse) throw err
    logger.error({ err, spill_dir: audit.spill_dir }, 'spilled audit records of another number of workers could not be adopted: they stay where they are')
  }
}

/**
 * Takes the spill directory's lock for this process: 'held' when another process holds it, the
 * error when it cannot be taken at all. In SQLite's exclusive locking mode a connection keeps the
 * lock of its first write until it closes, and another process's connection is refused at once
 * (SQLITE_BUSY: no busy timeout).
 */
function lockSpillDir(base: string): 'locked' | 'held' | Error {
  if (claimed.has(base)) return 'locked' // this process's own, from an earlier gateway not yet released
  let lock: DatabaseSync | undefined
  try {
    lock = new DatabaseSync(join(base, OWNER_LOCK))
    lock.exec('PRAGMA locking_mode = EXCLUSIVE')
    lock.exec('BEGIN EXCLUSIVE; CREATE TABLE IF NOT EXISTS claim (at INTEGER); DELETE FROM claim; INSERT INTO claim VALUES (unixepoch()); COMMIT')
  } catch (err) {
    lock?.close()
    return isBusy(err) ? 'held' : (err as Error)
  }
  claimed.set(base, lock)
  return 'locked'
}

/** Gives up the spill directory at the end of a shutdown: a later gateway in this same process (the tests', the demo's) may take it. */
export function releaseAuditSpills(audit: AuditConfig): void {
  if (audit.sinks.length === 0) return
  const base = resolve(audit.spill_dir)
  claimed.get(base)?.close()
  claimed.delete(base)
  const file = join(base, OWNER)
  try {
    const owner = JSON.parse(readFileSync(file, 'utf8')) as { host?: unknown; pid?: unknown }
    if (owner.host === hostname() && owner.pid === process.pid) unlinkSync(file)
  } catch {
    // none, or unreadable: nothing of ours to give up
  }
}

/**
 * A process beyond its pid, which the kernel gives again: this boot's id and the process's start
 * time (Linux's /proc); null where there is none. Without it, a gateway killed (OOM, a reboot) left
 * a pid that another process held by the next start, which was then refused for good (found by review).
 */
export function processStamp(pid: number): string | null {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8')
    const started = stat.slice(stat.lastIndexOf(')') + 2).split(' ')[19] // field 22, starttime
    const boot = readFileSync('/proc/sys/kernel/random/boot_id', 'utf8').trim()
    return started === undefined ? null : `${boot}:${started}`
  } catch {
    return null
  }
}

/** Who `owner.json` says owns `base`, for a refusal's message; null when it does not say. */
function ownerOf(base: string): { host: string; pid: number } | null {
  try {
    const owner = JSON.parse(readFileSync(join(base, OWNER), 'utf8')) as { host?: unknown; pid?: unknown }
    return typeof owner.host === 'string' && typeof owner.pid === 'number' ? { host: owner.host, pid: owner.pid } : null
  } catch {
    return null
  }
}

/** Another live process of this host that owns `base`, or null. */
function otherOwner(base: string): { host: string; pid: number } | null {
  let owner: { host?: unknown; pid?: unknown; started?: unknown }
  try {
    owner = JSON.parse(readFileSync(join(base, OWNER), 'utf8')) as { host?: unknown; pid?: unknown; started?: unknown }
  } catch {
    return null // none yet, or unreadable: taken over
  }
  if (owner.host !== hostname() || typeof owner.pid !== 'number' || owner.pid === process.pid) return null
  if (typeof owner.started === 'string') {
    const now = processStamp(owner.pid)
    if (now !== null && now !== owner.started) return null // its pid is another process's now
  }
  try {
    process.kill(owner.pid, 0)
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ESRCH') return null // gone
  }
  return { host: owner.host, pid: owner.pid }
}

/**
 * Moves the spill files of the sinks named by `files` that no audit worker of this shape reads
 * (`workers`: the number of request workers, null for one process) under the adopting directory's
 * `adopted/`, with the chain state of each origin they left; answers what moved.
 */
export function adoptOrphanedSpills(base: string, workers: number | null, files: readonly string[]): Array<{ from: string; to: string }> {
  if (!existsSync(base)) return []
  const origins: Array<{ label: string; dir: string }> = []
  if (workers !== null) origins.push({ label: 'process', dir: base })
  for (const entry of readdirSync(base, { withFileTypes: true })) {
    const number = WORKER_DIR.exec(entry.name)?.[1]
    if (entry.isDirectory() && number !== undefined && (workers === null || Number(number) > workers)) origins.push({ label: entry.name, dir: join(base, entry.name) })
  }
  const into = join(adoptingSpillDir(base, workers), ADOPTED)
  const stamp = Date.now()
  const moved: Array<{ from: string; to: string }> = []
  const move = (from: string, group: string, file: string) => {
    makeDirectories(join(into, group))
    renameSync(join(from, file), join(into, group, file))
    moved.push({ from: join(from, file), to: join(into, group, file) })
  }
  for (const { label, dir } of origins) {
    const own = `${label}-${stamp}`
    const waiting = waitingSpillFiles(dir).filter((file) => files.some((first) => segmentOf(first, file) !== null))
    for (const file of waiting) move(dir, own, file)
    // Its chain ends here: continued later, it would number records again that these files hold.
    if (waiting.length > 0 && existsSync(join(dir, CHAIN_STATE))) move(dir, own, CHAIN_STATE)
    // What it had adopted itself and not yet replayed.
    for (const sub of subdirectories(join(dir, ADOPTED))) {
      for (const file of waitingSpillFiles(join(dir, ADOPTED, sub))) move(join(dir, ADOPTED, sub), `${label}-${sub}`, file)
    }
  }
  return moved
}

/** The directories of adopted spill files under `spillDir`, those with records waiting first; empty ones are removed. */
export function adoptedSpillDirs(spillDir: string): string[] {
  const dirs: string[] = []
  for (const sub of subdirectories(join(spillDir, ADOPTED))) {
    const dir = join(spillDir, ADOPTED, sub)
    if (waitingSpillFiles(dir).length > 0) dirs.push(dir)
    else removeIfEmpty(dir)
  }
  return dirs
}

/** Spill files with records in them (an empty file is a drained one). */
export function waitingSpillFiles(dir: string): string[] {
  return files(dir).filter((file) => SPILL_FILE.test(file) && statSync(join(dir, file)).size > 0)
}

function subdirectories(dir: string): string[] {
  try {
    return readdirSync(dir, { withFileTypes: true }).filter((entry) => entry.isDirectory()).map((entry) => entry.name)
  } catch {
    return []
  }
}

function files(dir: string): string[] {
  try {
    return readdirSync(dir, { withFileTypes: true }).filter((entry) => entry.isFile()).map((entry) => entry.name)
  } catch {
    return []
  }
}

/** A drained adoption: its empty spill files and the chain state that came with them, then the directory (kept if anything else is in it, a quarantine file say). */
function removeIfEmpty(dir: string): void {
  for (const file of files(dir)) {
    if (file === CHAIN_STATE || (SPILL_FILE.test(file) && statSync(join(dir, file)).size === 0)) unlinkSync(join(dir, file))
  }
  try {
    rmdirSync(dir)
  } catch {
    // not empty: kept
  }
}
