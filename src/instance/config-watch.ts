// `server.watch_config`: the config file is polled (stat, once a second) and a change reloads it,
// as SIGHUP does. Polling rather than fs.watch: a Kubernetes ConfigMap volume swaps a symlink
// (`..data`) to a new directory, which inotify on the file's path does not report, while stat
// follows the link and sees a new inode. One stat a second costs nothing measurable.
import { statSync, unwatchFile, watchFile, type Stats } from 'node:fs'
import type { GatewayState } from '../gateway/index.ts'

/** Editors and `kubectl` write a file in more than one step: the reload waits for them to finish. */
const TIMING = { pollMs: 1_000, settleMs: 200 }

export interface ConfigWatch {
  stop(): void
}

type Version = Pick<Stats, 'mtimeMs' | 'ino' | 'size'>
const sameVersion = (a: Version | null, b: Version | null) => a !== null && b !== null && a.mtimeMs === b.mtimeMs && a.ino === b.ino && a.size === b.size
/** Null for a file that cannot be read now (gone, EACCES, ENOTDIR): this runs in a timer, where a throw would end the gateway (found by review). */
const versionOf = (file: string): Version | null => {
  try {
    const s = statSync(file, { throwIfNoEntry: false })
    return s === undefined ? null : { mtimeMs: s.mtimeMs, ino: s.ino, size: s.size }
  } catch {
    return null
  }
}

/** Watches always; reloads only while the running config has `server.watch_config: true`, so turning it on takes a reload, not a restart. */
export function watchConfigFile(file: string, state: GatewayState, reload: () => void, timing = TIMING): ConfigWatch {
  let settle: NodeJS.Timeout | null = null
  // The version last reloaded: a poll that lands between a write's truncate and its data sees two
  // changes a poll apart, and the reload after the first already read the second (CI on 9211471
  // logged two reloads for one `writeFile`).
  let reloaded = versionOf(file)
  const changed = (now: Stats, before: Stats) => {
    if (sameVersion(now, before) || sameVersion(now, reloaded)) return
    if (now.nlink === 0 && now.size === 0) return // removed (a rename in progress): the next poll sees the new file
    if (!state.runtime.config.server.watch_config) return
    if (settle !== null) clearTimeout(settle)
    settle = setTimeout(() => {
      settle = null
      const current = versionOf(file)
      if (sameVersion(current, reloaded)) return
      reloaded = current
      state.logger.info({ file }, 'config file changed: reloading')
      reload()
    }, timing.settleMs).unref()
  }
  watchFile(file, { interval: timing.pollMs, persistent: false }, changed)
  return {
    stop() {
      if (settle !== null) clearTimeout(settle)
      unwatchFile(file, changed)
    },
  }
}
