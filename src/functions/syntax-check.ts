// `bouncer check` reads a function module's code without running it: the gateway's workers are the
// only place a module runs (its top level may open connections or read secrets), but a syntax error
// found only there was a function whose every call answered 502 after a start that said nothing
// wrong. A child Node parses each module as its workers would load it — TypeScript's types stripped
// as Node strips them, an ES module linked to nothing and evaluated never — and says what did not
// parse. Missing imports and what the module does when it runs are the workers' to find.
import { execFile } from 'node:child_process'
import { extname } from 'node:path'

/** The parse, run in the child: one JSON line, `{ [path]: problem }`, for the paths it is given. */
const PARSE_EACH = `
const { readFileSync, realpathSync } = require('node:fs')
const { sep } = require('node:path')
const { findPackageJSON, stripTypeScriptTypes } = require('node:module')
const { pathToFileURL } = require('node:url')
const { SourceTextModule, compileFunction } = require('node:vm')
const problems = {}
// A .js or .ts file is what its package.json's "type" says, as the workers' import() reads it: only
// with none does Node take either (an ES module when its syntax says so).
const packageType = (path) => {
  try {
    const found = findPackageJSON(pathToFileURL(path))
    const type = found === undefined ? undefined : JSON.parse(readFileSync(found, 'utf8')).type
    return type === 'module' || type === 'commonjs' ? type : 'either'
  } catch {
    return 'either'
  }
}
for (const [path, kind] of JSON.parse(process.argv[1])) {
  let code
  try {
    // Node strips no types under node_modules (where its loader finds the file, links followed).
    if (kind.endsWith('-typescript') && realpathSync(path).split(sep).includes('node_modules')) {
      problems[path] = "TypeScript under node_modules, where Node strips no types (ERR_UNSUPPORTED_NODE_MODULES_TYPE_STRIPPING): use the package's JavaScript"
      continue
    }
    code = readFileSync(path, 'utf8')
    if (kind.endsWith('-typescript')) code = stripTypeScriptTypes(code)
  } catch (err) {
    problems[path] = (err.code === 'ERR_UNSUPPORTED_TYPESCRIPT_SYNTAX' || err.code === 'ERR_INVALID_TYPESCRIPT_SYNTAX' ? 'SyntaxError: ' : '') + err.message.split('\\n')[0]
    continue
  }
  const asModule = () => { new SourceTextModule(code, { identifier: path }) }
  const asScript = () => { compileFunction(code, ['exports', 'require', 'module', '__filename', '__dirname'], { filename: path }) }
  const base = kind.startsWith('either') ? packageType(path) : kind.split('-')[0]
  const tries = base === 'module' ? [asModule] : base === 'commonjs' ? [asScript] : [asModule, asScript]
  let first
  for (const parse of tries) {
    try { parse(); first = undefined; break } catch (err) { first ??= err }
  }
  if (first) {
    const where = /:(\\d+)$/.exec(String(first.stack).split('\\n')[0] ?? '')
    problems[path] = first.name + ': ' + first.message + (where ? ' (line ' + where[1] + ')' : '')
  }
}
// On a line of its own, the last: a preload of NODE_OPTIONS (an APM agent) may have printed before.
process.stdout.write('\\n' + JSON.stringify(problems) + '\\n')
`

/** How a file's extension says it is loaded: `.js` and `.ts` may be either kind (package.json's `type`, read in the child). */
function kindOf(path: string): string {
  const extension = extname(path)
  const typescript = ['.ts', '.mts', '.cts'].includes(extension)
  const base = extension === '.mjs' || extension === '.mts' ? 'module' : extension === '.cjs' || extension === '.cts' ? 'commonjs' : 'either'
  return typescript ? `${base}-typescript` : base
}

/** The parse did not run to its end: `message` says why, in a line (never the child's command, which is this file's script). */
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
    execFile(process.execPath, ['--experimental-vm-modules', '--no-warnings', '-e', PARSE_EACH, input], { timeout: 30_000, maxBuffer: 4 * 1024 * 1024 }, (err, out, errOut) => {
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
