// Making a file's directories, as `mkdir -p` does, in a way that always ends.
import { mkdirSync, statSync } from 'node:fs'
import { dirname } from 'node:path'

/**
 * Makes `path` and the directories above it that are missing. Node's own `mkdirSync(path, {
 * recursive: true })` never returns for a path under /proc or /sys (the kernel answers ENOENT for the
 * new directory and EEXIST for its parent, and Node tries again for ever): an audit log configured
 * under /proc held the gateway's start with a core at 100% (a probe). Here each missing directory is
 * made once, from the nearest one that exists, and the first refusal is thrown as it is.
 */
export function makeDirectories(path: string): void {
  const missing: string[] = []
  for (let at = path; ; at = dirname(at)) {
    if (isDirectory(at)) break
    missing.push(at)
    if (dirname(at) === at) break
  }
  for (const dir of missing.reverse()) {
    try {
      mkdirSync(dir)
    } catch (err) {
      // Made meanwhile by another process (two gateways starting on one data directory): as good.
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST' || !isDirectory(dir)) throw err
    }
  }
}

/** Whether `path` is a directory; false when nothing is there; a file there is the mkdir's to refuse (ENOTDIR, EEXIST). */
function isDirectory(path: string): boolean {
  try {
    return statSync(path).isDirectory()
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return false
    throw err
  }
}
