// The audit worker is started with every gateway (and again after every crash): what it imports is
// paid at each start. Importing config (its zod schemas) through one re-export cost ~190 ms of CPU
// per start, which every gateway a test starts paid (the whole suite's time grew by minutes).
import { readFileSync } from 'node:fs'
import { dirname, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'
import { describe, expect, it } from 'vitest'

const SRC = resolve(dirname(fileURLToPath(import.meta.url)), '../../src')

/** Every source file a module loads at run time (value imports and re-exports; `import type` is erased). */
function loadedBy(entry: string): string[] {
  const seen = new Set<string>()
  const queue = [resolve(SRC, entry)]
  for (let file = queue.shift(); file !== undefined; file = queue.shift()) {
    if (seen.has(file)) continue
    seen.add(file)
    const text = readFileSync(file, 'utf8')
    for (const match of text.matchAll(/^\s*(?:import|export)\s+(?!type\b)(?:[^'"]*?\sfrom\s+)?['"](\.[^'"]+)['"]/gm)) {
      queue.push(resolve(dirname(file), match[1] as string))
    }
  }
  return [...seen].map((file) => file.slice(SRC.length + 1))
}

describe('the audit worker thread', () => {
  it('loads no config module and no zod: only audit, collections, errors and text', () => {
    const files = loadedBy('audit/worker.ts')
    expect(files).toContain('audit/sinks/sqlite.ts')
    expect(files.filter((file) => !/^(audit|collections|errors|text)\//.test(file))).toEqual([])
    expect(files.length).toBeLessThan(50)
  })
})
