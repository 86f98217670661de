// Finding and loading the config for a command: one place, so every command reads the same file
// and reports an invalid one the same way (its errors on stderr, then one line, exit 1).
import { existsSync } from 'node:fs'
import type { Command } from 'commander'
import { formatDiagnostic, loadConfigFile, type Config, type LoadedConfig } from '../config/index.ts'
import { UserError } from './user-error.ts'

/** Where a config is looked for when neither --config nor $BOUNCER_CONFIG names one, in order. */
export const CONFIG_SEARCH_PATH: readonly string[] = ['./bouncer.yaml', '/etc/bouncer/bouncer.yaml']

/** `--config`, else `$BOUNCER_CONFIG`, else the first file of the search path that exists. */
export function findConfig(flag: string | undefined, env: NodeJS.ProcessEnv = process.env): string {
  // An empty --config (a variable that was not set: --config "$CFG") read a file named '' and said ':1:0: no such file'.
  if (flag === '') throw new UserError('--config needs a path (it was given an empty one)', 2)
  if (flag !== undefined) return flag
  if (env.BOUNCER_CONFIG) return env.BOUNCER_CONFIG
  const found = CONFIG_SEARCH_PATH.find((path) => existsSync(path))
  if (found === undefined) {
    throw new UserError(`no config file: give --config PATH, set BOUNCER_CONFIG, or create ${CONFIG_SEARCH_PATH.join(' or ')}`)
  }
  return found
}

export type ValidConfig = LoadedConfig & { config: Config }

/** The config a command works with; an invalid one is the user's to fix (`bouncer check` says how). */
export async function loadCommandConfig(flag: string | undefined): Promise<ValidConfig> {
  const file = findConfig(flag)
  const loaded = await loadConfigFile(file)
  if (!loaded.config) {
    // A file that cannot be read is said so once: "is not valid (see bouncer check)" followed, and check says no more.
    if (loaded.unreadable) throw new UserError(`${file}: ${loaded.diagnostics[0]?.message ?? 'cannot read the config file'}`)
    for (const d of loaded.diagnostics) if (d.severity === 'error') console.error(formatDiagnostic(file, d))
    throw new UserError(`${file} is not valid (see bouncer check)`)
  }
  return { ...loaded, config: loaded.config }
}

export function configOption(command: Command): Command {
  return command.option('--config <path>', `config file (default: $BOUNCER_CONFIG, else ${CONFIG_SEARCH_PATH.join(', else ')})`)
}
