// An ES module script run by a Node process of its own (the test's Node, without NODE_OPTIONS'
// preloads): what a module loads, or does, where nothing else has been loaded before it.
import { execFileSync } from 'node:child_process'

/** The script's stdout; a script that fails throws, with its stderr. */
export function runInFreshProcess(script: string): string {
  return execFileSync(process.execPath, ['--input-type=module', '-e', script], { encoding: 'utf8', env: { ...process.env, NODE_OPTIONS: '' } })
}
