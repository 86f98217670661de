// `bouncer check` reads a function module's code without running it: the gateway's workers are the
// only place a module runs (its top level may open connections or read secrets), but a syntax error
// found only there was a function whose every call answered 502 after a start that said nothing
// wrong. A child Node parses each module as its workers would load it — TypeScript's types stripped
// as Node strips them, an ES module linked to nothing and evaluated never — and says what did not
// parse. Missing imports and what the module does when it runs are the workers' to find.
import { execFile } from 'node:child_process'
import { extname } from 'node:path'
import { fileURLToPath } from 'node:url'

/** The child's program (syntax-check-child.ts): from src/ by type stripping in a checkout, the build's .js in dist/. */
const CHILD_URL = new URL(import.meta.url.endsWith('.ts') ? './syntax-check-child.ts' : './syntax-check-child.js', import.meta.url)

/** How a file's extension says it is loaded: `.js` and `.ts` may be either kind (package.json's `type`, read in the child). */
function kindOf(path: string): string {
  const extension = extname(path)
  const typescript = ['.ts', '.mts', '.cts'].includes(extension)
  const base = extension === '.mjs' || extension === '.mts' ? 'module' : extension === '.cjs' || extension === '.cts' ? 'commonjs' : 'either'
  return typescript ? `${base}-typescript` : base
}

/** The parse did not run to its end: `message` says why, in a line (never the child's command). */
export class ModulesNotParsed extends Error {}

/**
 * What in each module does not parse (`SyntaxError: … (line N)`), by path; a module that parses is
 * not in the map. Paths that do not exist are left to the config's own checks. Rejects with
 * ModulesNotParsed when the child did not answer (killed at 30 s, its Node failed to start).
 */
export async function moduleSyntaxProblems(paths: readonly string[]): Promise<Map<string, string>> {
  if (paths.length === 0) return new Map()
  const input = JSON.stringify([...new Set(paths)].map((path) => [path, kindOf(path)]))
  const stdout = await new Promise<string>((resolve, reject) => {
    execFile(process.execPath, ['--experimental-vm-modules', '--no-warnings', fileURLToPath(CHILD_URL), input], { timeout: 30_000, maxBuffer: 4 * 1024 * 1024 }, (err, out, errOut) => {
      if (!err) return resolve(out)
      const firstLine = String(errOut).split('\n').find((line) => line.trim() !== '')
      const why = err.killed ? 'the parse took over 30 s' : `its Node ended with ${err.code ?? err.signal ?? 'an error'}${firstLine ? `: ${firstLine.trim()}` : ''}`
      reject(new ModulesNotParsed(why))
    })
  })
  const answer = stdout.trimEnd().split('\n').at(-1) ?? ''
  try {
    return new Map(Object.entries(JSON.parse(answer) as Record<string, string>))
  } catch {
    throw new ModulesNotParsed('its answer was not the JSON line it writes last (something printed after it)')
  }
}
