// Checks about functions (functions[], and routes whose target is one): names, modules that exist and
// can be loaded, and route settings that only mean something for an HTTP upstream.
import { statSync } from 'node:fs'
import { extname } from 'node:path'
import type { ConfigPath, Finding } from './diagnostics.ts'
import type { Config } from './schema.ts'

const MODULE_EXTENSIONS = new Set(['.js', '.mjs', '.cjs', '.ts', '.mts', '.cts'])
const TYPESCRIPT_EXTENSIONS = new Set(['.ts', '.mts', '.cts'])
/** The audit record's `upstream` of a function route (src/functions/): an upstream may not look like one. */
const FUNCTION_PREFIX = 'function:'

export function functionFindings(config: Config): Finding[] {
  const findings: Finding[] = []
  const error = (path: ConfigPath, message: string) => findings.push({ severity: 'error', path, message })
  const names = new Set<string>()
  config.functions.forEach((fn, i) => {
    if (names.has(fn.name)) error(['functions', i, 'name'], `duplicate function "${fn.name}"`)
    names.add(fn.name)
    const problem = moduleProblem(fn.module)
    if (problem) error(['functions', i, 'module'], problem)
    // A worker thread's dates use its process's time zone, read once from the gateway's own TZ: a
    // ported Lambda function's TZ was in process.env and its local times silently the gateway's (a probe).
    if (Object.hasOwn(fn.environment, 'TZ')) {
      findings.push({ severity: 'warning', path: ['functions', i, 'environment', 'TZ'], message: 'TZ here does not change the handler\'s time zone: its worker thread shares the gateway\'s process, whose dates use the gateway\'s own TZ; the handler reads this value in process.env only (Intl\'s timeZone option takes it)' })
    }
  })
  config.upstreams.forEach((upstream, i) => {
    if (upstream.name.startsWith(FUNCTION_PREFIX)) {
      error(['upstreams', i, 'name'], `an upstream name cannot start with "${FUNCTION_PREFIX}": the audit log names a function route's target so`)
    }
  })
  const used = new Set<string>()
  config.routes.forEach((route, i) => {
    if (route.function === undefined) return
    used.add(route.function)
    if (!names.has(route.function)) error(['routes', i, 'function'], `unknown function "${route.function}"`)
    if (route.upstream_path !== undefined) error(['routes', i, 'upstream_path'], 'upstream_path rewrites the path sent to an upstream; a function gets the request path (rawPath) as it is')
    if (route.websocket) error(['routes', i, 'websocket'], 'a function answers requests, it cannot hold a WebSocket')
  })
  config.functions.forEach((fn, i) => {
    if (!used.has(fn.name)) findings.push({ severity: 'warning', path: ['functions', i, 'name'], message: `function "${fn.name}" is not the target of any route` })
  })
  return findings
}

/** Why the module cannot be loaded (its code is not run here: only the gateway's workers run it), or null. */
function moduleProblem(path: string): string | null {
  const extension = extname(path)
  if (!MODULE_EXTENSIONS.has(extension)) return `a function module is a .js, .mjs, .cjs, .ts, .mts or .cts file: "${path}"`
  if (TYPESCRIPT_EXTENSIONS.has(extension) && !process.features.typescript) {
    return `a TypeScript module needs Node's type stripping (Node 22.18 or later; this is ${process.version}): "${path}"`
  }
  try {
    if (!statSync(path).isFile()) return `not a file: "${path}"`
  } catch {
    return `no such file: "${path}"`
  }
  return null
}
