// What a command's module loads before it runs: each `bouncer` process pays for its imports (~1-2 ms
// of CPU a module), and the test suite starts hundreds. `bouncer secrets` needs the names of the
// gateway's signing keys, not their signers: it imported them from upstream/ and agents/ (116
// modules, 419 in all); the names live in secrets/ (src/secrets/store.ts), which those layers
// re-export. `bouncer explain` loads the gateway once its arguments and config have passed.
import { dirname, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'
import { describe, expect, it } from 'vitest'
import { runInFreshProcess } from '../helpers/fresh-process.ts'

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '../..')

/** The src/ folders `command`'s module loads (a fresh process, so nothing is loaded before). */
function foldersLoadedBy(command: string): string[] {
  const script = `const { registerHooks } = await import('node:module')
const loaded = new Set()
registerHooks({ load(url, context, next) { const folder = /\\/src\\/([^/]+)\\//.exec(url); if (folder) loaded.add(folder[1]); return next(url, context) } })
await import(${JSON.stringify(`${ROOT}/src/cli/`)} + ${JSON.stringify(command)} + '.ts')
console.log(JSON.stringify([...loaded].sort()))`
  return JSON.parse(runInFreshProcess(script)) as string[]
}

describe('the modules a command loads before it runs', () => {
  it('bouncer secrets: neither the upstreams nor the agents layer', () => {
    const folders = foldersLoadedBy('secrets')
    expect(folders).not.toContain('upstream')
    expect(folders).not.toContain('agents')
    expect(folders).toContain('secrets')
  })

  it('bouncer explain: no gateway until its arguments and config have passed', () => {
    const folders = foldersLoadedBy('explain')
    expect(folders).not.toContain('gateway')
    expect(folders).not.toContain('upstream')
    expect(folders).toContain('config')
  })
})
