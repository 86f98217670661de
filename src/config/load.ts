// Reads bouncer.yaml: YAML with source positions, `${env:NAME}` interpolation, `${secret:NAME}`
// references collected for the secrets store, then the schema and the cross-reference checks.
// Every problem becomes a Diagnostic with its line and column; nothing stops at the first one.
import { readFile } from 'node:fs/promises'
import { dirname, resolve } from 'node:path'
import { LineCounter, parseDocument } from 'yaml'
import { createLocator, type Diagnostic, type Finding, type Locator } from './diagnostics.ts'
import { resolveFilePaths } from './file-paths.ts'
import { configSchema, type Config } from './schema.ts'
import { interpolate, type SecretReference } from './interpolate.ts'
import { crossCheck } from './validate.ts'

export interface LoadedConfig {
  /** Present when there are no errors (warnings allowed). */
  config: Config | undefined
  diagnostics: Diagnostic[]
  /** `${secret:NAME}` occurrences, resolved later by the secrets store. */
  secretRefs: SecretReference[]
  /** The file as given (for messages). */
  file: string
  locate: Locator
}

export function resolveConfigPath(flag: string | undefined, env: NodeJS.ProcessEnv = process.env): string {
  return flag ?? env.BOUNCER_CONFIG ?? './bouncer.yaml'
}

export async function loadConfigFile(file: string, env: NodeJS.ProcessEnv = process.env): Promise<LoadedConfig> {
  let text: string
  try {
    text = await readFile(file, 'utf8')
  } catch (err) {
    const reason = (err as NodeJS.ErrnoException).code === 'ENOENT' ? 'no such file' : (err as Error).message
    const locate = createLocator(undefined, new LineCounter())
    return {
      config: undefined,
      diagnostics: [locate({ severity: 'error', path: [], message: `cannot read the config file: ${reason}` })],
      secretRefs: [],
      file,
      locate,
    }
  }
  return loadConfigText(text, file, env)
}

export function loadConfigText(text: string, file: string, env: NodeJS.ProcessEnv = process.env): LoadedConfig {
  const lines = new LineCounter()
  const doc = parseDocument(text, { lineCounter: lines, prettyErrors: false, uniqueKeys: true })
  const locate = createLocator(doc, lines)
  const diagnostics: Diagnostic[] = []
  const result = (config?: Config, secretRefs: SecretReference[] = []): LoadedConfig => ({
    config,
    diagnostics,
    secretRefs,
    file,
    locate,
  })

  for (const error of doc.errors) {
    const { line, col } = lines.linePos(error.pos[0])
    diagnostics.push({ severity: 'error', path: [], message: yamlMessage(error.message), line: Math.max(line, 1), col })
  }
  if (diagnostics.length > 0) return result()

  const findings: Finding[] = []
  const secretRefs = interpolate(doc, env, findings)
  const raw = doc.toJS({ maxAliasCount: 100 }) ?? {}
  const parsed = configSchema.safeParse(raw)
  let config: Config | undefined
  if (!parsed.success) {
    // A value already reported by interpolation (a missing variable) is not reported twice.
    const reported = new Set(findings.map((f) => f.path.join('\0')))
    for (const issue of parsed.error.issues) {
      for (const finding of findingsOf(issue, raw)) if (!reported.has(finding.path.join('\0'))) findings.push(finding)
    }
  } else {
    config = resolveFilePaths(parsed.data, dirname(resolve(file)))
    findings.push(...crossCheck(config, secretRefs))
  }
  diagnostics.push(...findings.map(locate))
  diagnostics.sort((a, b) => a.line - b.line || a.col - b.col)
  const failed = diagnostics.some((d) => d.severity === 'error')
  return result(failed ? undefined : config, secretRefs)
}

function findingsOf(
  issue: { code: string; path: PropertyKey[]; message: string; keys?: string[]; input?: unknown },
  raw: unknown,
): Finding[] {
  const path = issue.path.map((p) => (typeof p === 'number' ? p : String(p)))
  if (issue.code === 'unrecognized_keys' && issue.keys) {
    return issue.keys.map((key) => ({ severity: 'error', path: [...path, key], message: `unknown key "${key}"`, atKey: true }))
  }
  if (issue.code === 'invalid_type' && valueAt(raw, path) === undefined) {
    const key = path.at(-1)
    return [{ severity: 'error', path: path.slice(0, -1), message: `missing required key "${String(key)}"` }]
  }
  return [{ severity: 'error', path, message: friendly(issue.message) }]
}

function valueAt(root: unknown, path: ReadonlyArray<string | number>): unknown {
  let node = root
  for (const part of path) {
    if (node === null || typeof node !== 'object') return undefined
    node = (node as Record<string | number, unknown>)[part]
  }
  return node
}

function friendly(message: string): string {
  return message.replace(/^Invalid input: /, '').replace(/^Invalid option: /, '')
}

function yamlMessage(message: string): string {
  return message.split('\n')[0]?.replace(/ at line \d+, column \d+.*$/, '') ?? message
}
