// The program syntax-check.ts runs in a child Node (`node --experimental-vm-modules <this file>
// <JSON>`): it parses each module it is given as the function workers would load it, and writes one
// JSON line, `{ [path]: problem }`, for those that do not parse. A file of its own, so tsc and eslint
// read it as they read the rest; it imports nothing but Node's own modules, as the child loads it
// alone (from src/ by type stripping in a checkout, from dist/ in the build).
import { readFileSync, realpathSync } from 'node:fs'
import { findPackageJSON, stripTypeScriptTypes } from 'node:module'
import { sep } from 'node:path'
import { pathToFileURL } from 'node:url'
import { SourceTextModule, compileFunction } from 'node:vm'

/** How a module's file says it is loaded: syntax-check.ts's kindOf, e.g. `either`, `module-typescript`. */
type Kind = string

/**
 * A .js or .ts file is what its package.json's "type" says, as the workers' import() reads it: only
 * with none does Node take either (an ES module when its syntax says so).
 */
function packageType(path: string): 'module' | 'commonjs' | 'either' {
  try {
    const found = findPackageJSON(pathToFileURL(path))
    const type = found === undefined ? undefined : (JSON.parse(readFileSync(found, 'utf8')) as { type?: unknown }).type
    return type === 'module' || type === 'commonjs' ? type : 'either'
  } catch {
    return 'either'
  }
}

/** The code Node would compile for the file: its types stripped when it is TypeScript. */
function codeOf(path: string, kind: Kind): { code: string } | { problem: string } {
  const typescript = kind.endsWith('-typescript')
  // Node strips no types under node_modules (where its loader finds the file, links followed).
  if (typescript && realpathSync(path).split(sep).includes('node_modules')) {
    return { problem: "TypeScript under node_modules, where Node strips no types (ERR_UNSUPPORTED_NODE_MODULES_TYPE_STRIPPING): use the package's JavaScript" }
  }
  const code = readFileSync(path, 'utf8')
  return { code: typescript ? stripTypeScriptTypes(code) : code }
}

/** What in the code does not parse as the kind it is loaded as, or undefined. */
function parseProblem(path: string, code: string, kind: Kind): string | undefined {
  const asModule = () => void new SourceTextModule(code, { identifier: path })
  const asScript = () => void compileFunction(code, ['exports', 'require', 'module', '__filename', '__dirname'], { filename: path })
  const base = kind.startsWith('either') ? packageType(path) : kind.split('-')[0]
  const tries = base === 'module' ? [asModule] : base === 'commonjs' ? [asScript] : [asModule, asScript]
  let first: Error | undefined
  for (const parse of tries) {
    try {
      parse()
      return undefined
    } catch (err) {
      first ??= err as Error
    }
  }
  if (first === undefined) return undefined
  const where = /:(\d+)$/.exec(String(first.stack).split('\n')[0] ?? '')
  return `${first.name}: ${first.message}${where ? ` (line ${where[1]})` : ''}`
}

const problems: Record<string, string> = {}
for (const [path, kind] of JSON.parse(process.argv[2] ?? '[]') as [string, Kind][]) {
  try {
    const read = codeOf(path, kind)
    const problem = 'problem' in read ? read.problem : parseProblem(path, read.code, kind)
    if (problem !== undefined) problems[path] = problem
  } catch (err) {
    // A file that could not be read, or types Node cannot strip (an enum): the first line says which.
    const { code, message } = err as NodeJS.ErrnoException
    const syntax = code === 'ERR_UNSUPPORTED_TYPESCRIPT_SYNTAX' || code === 'ERR_INVALID_TYPESCRIPT_SYNTAX'
    problems[path] = `${syntax ? 'SyntaxError: ' : ''}${message.split('\n')[0]}`
  }
}
// On a line of its own, the last: a preload of NODE_OPTIONS (an APM agent) may have printed before.
process.stdout.write(`\n${JSON.stringify(problems)}\n`)
