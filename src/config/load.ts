// Reads bouncer.yaml: YAML with source positions, `${env:NAME}` interpolation, `${secret:NAME}`
// references collected for the secrets store, then the schema and the cross-reference checks.
// Every problem becomes a Diagnostic with its line and column; nothing stops at the first one.
import { readFile } from 'node:fs/promises'
import { dirname, resolve } from 'node:path'
import { isAlias, isScalar, LineCounter, parseDocument, visit, type Document } from 'yaml'
import { createLocator, type Diagnostic, type Finding, type Locator } from './diagnostics.ts'
import { configSchema, type Config } from './schema.ts'
import { applyListenVariables } from './listen-env.ts'
import { resolveFilePaths } from './file-paths.ts'
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

export async function loadConfigFile(file: string, env: NodeJS.ProcessEnv = process.env): Promise<LoadedConfig> {
  let text: string
  try {
    text = await readFile(file, 'utf8')
  } catch (err) {
    const reason = (err as NodeJS.ErrnoException).code === 'ENOENT' ? 'no such file' : (err as Error).message
    const locate = createLocator(undefined, new LineCounter())
    return withoutDocument(file, locate({ severity: 'error', path: [], message: `cannot read the config file: ${reason}` }))
  }
  return loadConfigText(text, file, env)
}

/** A file that yields no document at all: this one error. */
function withoutDocument(file: string, diagnostic: Diagnostic): LoadedConfig {
  return { config: undefined, diagnostics: [diagnostic], secretRefs: [], file, locate: createLocator(undefined, new LineCounter()) }
}

/** Aliases expanded at most this often: a few anchors that double each other ("billion laughs") stop here. */
const MAX_ALIAS_COUNT = 100

export function loadConfigText(text: string, file: string, env: NodeJS.ProcessEnv = process.env): LoadedConfig {
  try {
    return loadDocument(text, file, env)
  } catch (err) {
    // yaml's parser recurses once per nested collection and, unlike its composer, lets running
    // out of stack escape: 5,000 nested "- " then "}" threw a RangeError (found by fuzzing).
    if (!(err instanceof RangeError && /call stack/i.test(err.message))) throw err
    return withoutDocument(file, { severity: 'error', path: [], message: 'the file nests too deeply to be read (a config nests a few levels)', line: 1, col: 1 })
  }
}

function loadDocument(text: string, file: string, env: NodeJS.ProcessEnv): LoadedConfig {
  const lines = new LineCounter()
  // uniqueKeys: false, and duplicateKeyOffsets() instead: yaml's own check is quadratic.
  const doc = parseDocument(text, { lineCounter: lines, prettyErrors: false, uniqueKeys: false })
  const locate = createLocator(doc, lines)
  const diagnostics: Diagnostic[] = []
  const result = (config?: Config, secretRefs: SecretReference[] = []): LoadedConfig => ({
    config,
    diagnostics,
    secretRefs,
    file,
    locate,
  })

  const yamlErrors = doc.errors.map((error) => ({ offset: error.pos[0], message: yamlMessage(error.message) }))
  for (const offset of duplicateKeyOffsets(doc)) yamlErrors.push({ offset, message: 'Map keys must be unique' })
  for (const { offset, message } of yamlErrors.sort((a, b) => a.offset - b.offset)) {
    const { line, col } = lines.linePos(offset)
    diagnostics.push({ severity: 'error', path: [], message, line: Math.max(line, 1), col })
  }
  if (diagnostics.length > 0) return result()

  const findings: Finding[] = []
  const secretRefs = interpolate(doc, env, findings)
  let raw: unknown
  try {
    raw = doc.toJS({ maxAliasCount: MAX_ALIAS_COUNT }) ?? {}
  } catch (err) {
    diagnostics.push(aliasDiagnostic(doc, lines, err))
    return result()
  }
  findings.push(...applyListenVariables(raw, env))
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

/**
 * Where a key repeats one before it in the same map. yaml's own check (uniqueKeys: true) compares
 * each key with every earlier one: 2.6 s of CPU for one map of 8,000 keys (found by fuzzing). One
 * Set per map instead, comparing keys as yaml does: scalars by value, other keys never equal.
 */
function duplicateKeyOffsets(doc: Document): number[] {
  const offsets: number[] = []
  visit(doc, {
    Map(_key, map) {
      const seen = new Set<unknown>()
      for (const pair of map.items) {
        if (!isScalar(pair.key)) continue
        if (seen.has(pair.key.value)) offsets.push(pair.key.range?.[0] ?? 0)
        else seen.add(pair.key.value)
      }
    },
  })
  return offsets
}

/**
 * yaml reports neither an alias to an anchor not set before it (`upstream: *api`) nor an alias bomb
 * as a document error: its toJS() throws a ReferenceError, which reached `bouncer check` as a stack
 * trace (found by fuzzing). Pointed at the first alias whose anchor is missing, else the first alias.
 */
function aliasDiagnostic(doc: Document, lines: LineCounter, err: unknown): Diagnostic {
  const anchors = new Set<string>()
  let first: number | undefined
  let unresolved: number | undefined
  visit(doc, {
    Node(_key, node) {
      if (isAlias(node)) {
        first ??= node.range?.[0]
        if (!anchors.has(node.source)) unresolved ??= node.range?.[0]
      } else if (node.anchor) {
        anchors.add(node.anchor)
      }
    },
  })
  const message = err instanceof Error ? err.message : String(err)
  const { line, col } = lines.linePos(unresolved ?? first ?? 0)
  return { severity: 'error', path: [], message: yamlMessage(message), line: Math.max(line, 1), col }
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
