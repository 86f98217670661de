// The MCP SDK (~17 MB of resident memory and ~0.2 s at start, measured on `bouncer serve`) is loaded
// only for a config with mcp: nothing a gateway imports at start may import it statically.
import { execFileSync } from 'node:child_process'
import { describe, expect, it } from 'vitest'
import { loadConfigFile } from '../../../src/config/index.ts'
import { compileRuntime, createRuntimeDeps, loadModulesFor } from '../../../src/gateway/index.ts'
import { createLogger } from '../../../src/telemetry/logger.ts'

/** The npm packages a fresh Node process resolves while importing `module`. */
function packagesImportedBy(module: string): string[] {
  const hook = `
import { registerHooks } from 'node:module'
const seen = new Set()
registerHooks({ resolve(specifier, context, next) {
  const resolved = next(specifier, context)
  const name = /node_modules\\/((@[^/]+\\/)?[^/]+)/.exec(resolved.url)?.[1]
  if (name) seen.add(name)
  return resolved
} })
process.on('exit', () => process.stdout.write(JSON.stringify([...seen])))`
  const out = execFileSync(process.execPath, ['--import', `data:text/javascript,${encodeURIComponent(hook)}`, '--input-type=module', '-e', `await import(${JSON.stringify(module)})`], { encoding: 'utf8' })
  return JSON.parse(out) as string[]
}

describe('the MCP SDK', () => {
  it('is not imported by the gateway and its admin API at start', () => {
    const packages = packagesImportedBy(new URL('../../../src/instance/index.ts', import.meta.url).href)
    expect(packages).toEqual(expect.arrayContaining(['undici', 'zod'])) // the hook sees packages, and the gateway's own
    expect(packages.filter((name) => name.startsWith('@modelcontextprotocol/'))).toEqual([])
  })

  it('is loaded for a config with mcp, before it is compiled', async () => {
    const loaded = await loadConfigFile(new URL('../../../examples/mcp/bouncer.yaml', import.meta.url).pathname, { BOUNCER_ADMIN_TOKEN: 'a', TICKETS_TOKEN: 't' })
    expect(loaded.diagnostics.filter((d) => d.severity === 'error')).toEqual([])
    const deps = createRuntimeDeps(createLogger({ level: 'silent' }), { offline: true })
    try {
      await loadModulesFor(loaded.config!)
      const runtime = compileRuntime(loaded.config!, deps)
      expect(runtime.mcp).not.toBeNull()
      expect(runtime.mcp?.routes.map((route) => route.id)).toContain('builtin/mcp')
    } finally {
      await deps.closeAll()
    }
  })
})
