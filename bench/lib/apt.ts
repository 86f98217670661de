// Tools the bench compares against or drives with (nginx, wrk) come from Debian's packages. When one
// is missing and this process may install it (root, apt-get present, BENCH_NO_INSTALL unset), it is
// installed once; otherwise the caller reports the case skipped or falls back.
import { spawnSync } from 'node:child_process'
import { existsSync } from 'node:fs'

/** Whether `binary args` runs and exits 0. */
export function runs(binary: string, args: string[]): boolean {
  return spawnSync(binary, args).status === 0
}

/** Installs the first package of `packages` that installs, and says whether `found()` holds after. */
export function aptInstall(what: string, packages: string[], found: () => boolean): boolean {
  if (found()) return true
  if (process.getuid?.() !== 0 || !existsSync('/usr/bin/apt-get') || process.env.BENCH_NO_INSTALL === '1') return false
  process.stderr.write(`${what} is missing: installing it with apt-get…\n`)
  const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' }
  spawnSync('apt-get', ['update', '-qq'], { env, stdio: 'ignore', timeout: 180_000 })
  for (const name of packages) {
    spawnSync('apt-get', ['install', '-y', '-qq', name], { env, stdio: 'ignore', timeout: 300_000 })
    if (found()) return true
  }
  return false
}
