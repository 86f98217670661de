// Node 22 prints "ExperimentalWarning: SQLite is an experimental feature and might change at any
// time" in every thread that loads node:sqlite: each command's main thread (bin/bouncer.js drops it
// there, before the modules load) and serve's audit, side and request threads, which load it with
// their modules. Nothing the operator can act on (Node 24, which the project pins, prints none).

/**
 * Node's warning when node:sqlite loads (Node 22). bin/bouncer.js imports this module on its own,
 * before the rest: it must import nothing.
 */
export function isSqliteWarning(warning: Pick<Error, 'name' | 'message'>): boolean {
  return warning.name === 'ExperimentalWarning' && warning.message.startsWith('SQLite is an experimental feature')
}

/**
 * This thread's printing of warnings, without that one; every other, experimental or not, is printed
 * as before. Called first in a thread's entry module: Node emits a warning on a later tick than the
 * one that loaded the module, so the listeners are wrapped by then.
 */
export function quietSqliteWarning(): void {
  for (const listener of process.listeners('warning')) {
    process.off('warning', listener)
    process.on('warning', (warning) => {
      if (!isSqliteWarning(warning)) listener(warning)
    })
  }
}
