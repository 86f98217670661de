// An ES module import of node:http builds its facade, whose http.WebSocket getter loads Node's own
// bundled undici: ~80 ms of CPU at the start of each CLI command that needs no undici. src/ takes
// node:http through process.getBuiltinModule (src/http/node-http.ts); these keep it so.
import { readdirSync, readFileSync } from 'node:fs'
import { dirname, join, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'
import { describe, expect, it } from 'vitest'
import { runInFreshProcess } from '../helpers/fresh-process.ts'

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '../..')

function sources(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((entry) => {
    const path = join(dir, entry.name)
    return entry.isDirectory() ? sources(path) : entry.name.endsWith('.ts') ? [path] : []
  })
}

describe('node:http in src/', () => {
  it('is imported for its types only', () => {
    const valueImports = sources(join(ROOT, 'src')).filter((file) => /^import (?!type\b)[^'"]*from 'node:http'/m.test(readFileSync(file, 'utf8')))
    expect(valueImports.map((file) => file.slice(ROOT.length + 1))).toEqual([])
  })

  it("the CLI commands that reach no upstream load no bundled undici of Node (the gateway's undici package does)", () => {
    const modules = ['src/cli/audit.ts', 'src/cli/keys.ts', 'src/cli/sessions.ts']
    const script = `for (const m of ${JSON.stringify(modules)}) await import(${JSON.stringify(`${ROOT}/`)} + m); console.log(process.moduleLoadList.filter((m) => m.includes('deps/undici')).join(','))`
    const loaded = runInFreshProcess(script)
    expect(loaded.trim()).toBe('')
  })
})
