// Spill files that a gateway of another shape left behind. One process spills to `spill_dir`
// itself; with server.workers each worker spills to `spill_dir/wN` (workers/role.ts). A restart
// with another number of workers (or `auto` on another host) left the old layout's files where no
// audit worker read them: their records never reached the sink, which the checkpoints vouching
// for them made `audit verify` report as a truncated log (a probe). At start, before any audit
// worker runs, the process moves such files under its own first spill directory's `adopted/`, and
// that audit worker replays them into the same sinks (worker.ts). A record carries its chain and
// sequence number, so whichever writer replays it stores the same row.
import { existsSync, mkdirSync, readdirSync, renameSync, rmdirSync, statSync, unlinkSync } from 'node:fs'
import { join, resolve } from 'node:path'
import type { AuditConfig } from '../config/index.ts'
import type { Logger } from '../telemetry/index.ts'

const ADOPTED = 'adopted'
const WORKER_DIR = /^w([1-9][0-9]*)$/
const SPILL_FILE = /\.ndjson$/

/** The directory whose audit worker replays what was adopted: the process's own, or its first worker's. */
export function adoptingSpillDir(base: string, workers: number | null): string {
  return workers === null ? base : join(base, 'w1')
}

/** Adopts what the audit section's spill directory holds for another shape, and says so (never fails a start). */
export function adoptAuditSpills(audit: AuditConfig, workers: number | null, logger: Logger): void {
  if (audit.sinks.length === 0) return
  try {
    const moved = adoptOrphanedSpills(resolve(audit.spill_dir), workers)
    if (moved.length > 0) {
      logger.warn({ files: moved }, `spilled audit records of a gateway with another number of workers: ${workers === null ? 'this process replays' : 'worker w1 replays'} them into their sinks`)
    }
  } catch (err) {
    logger.error({ err, spill_dir: audit.spill_dir }, 'spilled audit records of another number of workers could not be adopted: they stay where they are')
  }
}

/**
 * Moves the spill files no audit worker of this shape reads (`workers`: the number of request
 * workers, null for one process) under the adopting directory's `adopted/`; answers what moved.
 */
export function adoptOrphanedSpills(base: string, workers: number | null): Array<{ from: string; to: string }> {
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
  for (const { label, dir } of origins) {
    // Its own files, and what it had adopted itself and not yet replayed.
    const groups = [{ name: `${label}-${stamp}`, dir }, ...subdirectories(join(dir, ADOPTED)).map((sub) => ({ name: `${label}-${sub}`, dir: join(dir, ADOPTED, sub) }))]
    for (const group of groups) {
      for (const file of waitingSpillFiles(group.dir)) {
        const to = join(into, group.name, file)
        mkdirSync(join(into, group.name), { recursive: true })
        renameSync(join(group.dir, file), to)
        moved.push({ from: join(group.dir, file), to })
      }
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

/** A drained adoption: its empty spill files, then the directory (kept if anything else is in it, a quarantine file say). */
function removeIfEmpty(dir: string): void {
  for (const file of files(dir)) if (SPILL_FILE.test(file) && statSync(join(dir, file)).size === 0) unlinkSync(join(dir, file))
  try {
    rmdirSync(dir)
  } catch {
    // not empty: kept
  }
}
