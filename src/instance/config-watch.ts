// `server.watch_config`: the config file is polled (stat, once a second) and a change reloads it,
// as SIGHUP does. Polling rather than fs.watch: a Kubernetes ConfigMap volume swaps a symlink
// (`..data`) to a new directory, which inotify on the file's path does not report, while stat
// follows the link and sees a new inode. One stat a second costs nothing measurable.
import { unwatchFile, watchFile, type Stats } from 'node:fs'
import type { GatewayState } from '../gateway/index.ts'

const POLL_MS = 1_000
/** Editors and `kubectl` write a file in more than one step: the reload waits for them to finish. */
const SETTLE_MS = 200

export interface ConfigWatch {
  stop(): void
}

/** Watches always; reloads only while the running config has `server.watch_config: true`, so turning it on takes a reload, not a restart. */
export function watchConfigFile(file: string, state: GatewayState, reload: () => void): ConfigWatch {
  let settle: NodeJS.Timeout | null = null
  const changed = (now: Stats, before: Stats) => {
    if (now.mtimeMs === before.mtimeMs && now.ino === before.ino && now.size === before.size) return
    if (now.nlink === 0 && now.size === 0) return // removed (a rename in progress): the next poll sees the new file
    if (!state.runtime.config.server.watch_config) return
    if (settle !== null) clearTimeout(settle)
    settle = setTimeout(() => {
      settle = null
      state.logger.info({ file }, 'config file changed: reloading')
      reload()
    }, SETTLE_MS).unref()
  }
  watchFile(file, { interval: POLL_MS, persistent: false }, changed)
  return {
    stop() {
      if (settle !== null) clearTimeout(settle)
      unwatchFile(file, changed)
    },
  }
}
