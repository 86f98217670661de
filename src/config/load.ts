// Reads bouncer.yaml: YAML with source positions, `${env:NAME}` interpolation, `${secret:NAME}`
// references collected for the secrets store, then the schema and the cross-reference checks.
// Every problem becomes a Diagnostic with its line and column; nothing stops at the first one.
import { isUtf8 } from 'node:buffer'
import { open } from 'node:fs/promises'
import { dirname, resolve } from 'node:path'
import { isAlias, isCollection, isScalar, LineCounter, parseDocument, visit, type Document, type Node } from 'yaml'
import { createLocator, type ConfigPath, type Diagnostic, type Finding, type Locator } from './diagnostics.ts'
import { configSchema, type Config } from './schema.ts'
import { applyListenVariables } from './listen-env.ts'
import { resolveFilePaths } from './file-paths.ts'
import { interpolate, type InterpolateOptions, type SecretReference, type TypedValue } from './interpolate.ts'
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
  /** The file could not be read at all (missing, unreadable, too large): its one diagnostic says why. */
  unreadable?: true
}

export async function loadConfigFile(file: string, env: NodeJS.ProcessEnv = process.env): Promise<LoadedConfig> {
  const read = await readConfigFile(file)
  return typeof read === 'string' ? loadConfigText(read, file, env) : read
}

/**
 * The file's text, or the load that says why it cannot be read. server.workers reads the file once
 * and gives every worker the same text: each reading it on its own could see two versions of it.
 */
export async function readConfigFile(file: string): Promise<string | LoadedConfig> {
  let bytes: Buffer | null
  try {
    bytes = await readAtMost(file, MAX_CONFIG_BYTES)
  } catch (err) {
    const reason = (err as NodeJS.ErrnoException).code === 'ENOENT' ? 'no such file' : (err as Error).message
    return unreadable(file, `cannot read the config file: ${reason}`)
  }
  if (bytes === null) return unreadable(file, `cannot read the config file: it is larger than ${MAX_CONFIG_BYTES / 1024 / 1024} MB (a config of 10,000 routes is about 2 MB)`)
  // Decoded loosely, a byte that is not UTF-8 (a file saved as Latin-1) became U+FFFD in a value
  // without a word: a header, a path or a name that is not what the file says.
  if (!isUtf8(bytes)) return notUtf8(file, bytes)
  return bytes.toString('utf8')
}

/** More than this is not read: /dev/zero, or a log given by mistake, was read until the heap gave out. */
const MAX_CONFIG_BYTES = 64 * 1024 * 1024

/** The file's bytes, or null when it holds more than `limit` (a device or pipe has no size to ask first). */
async function readAtMost(file: string, limit: number): Promise<Buffer | null> {
  const handle = await open(file, 'r')
  try {
    const chunks: Buffer[] = []
    let size = 0
    const chunk = Buffer.allocUnsafe(1024 * 1024)
    for (;;) {
      const { bytesRead } = await handle.read(chunk, 0, chunk.length, null)
      if (bytesRead === 0) return Buffer.concat(chunks, size)
      size += bytesRead
      if (size > limit) return null
      // A copy of what was read: a pipe gives 64 KB a read, and a 1 MB buffer kept for each held
      // ~1 GB before the 64 MB cap tripped (found by review).
      chunks.push(Buffer.from(chunk.subarray(0, bytesRead)))
    }
  } finally {
    await handle.close()
  }
}

/** The first line that is not UTF-8 (a newline byte is never part of a longer character). */
function notUtf8(file: string, bytes: Buffer): LoadedConfig {
  let start = 0
  for (let line = 1; ; line++) {
    const end = bytes.indexOf(0x0a, start)
    const text = bytes.subarray(start, end === -1 ? bytes.length : end)
    if (!isUtf8(text)) {
      const col = text.toString('utf8').indexOf('\uFFFD') + 1
      return withoutDocument(file, { severity: 'error', path: [], message: 'the file is not UTF-8 text (saved in another encoding?): save it as UTF-8', line, col: Math.max(col, 1) })
    }
    start = end + 1
  }
}

function unreadable(file: string, message: string): LoadedConfig {
  const locate = createLocator(undefined, new LineCounter())
  return { ...withoutDocument(file, locate({ severity: 'error', path: [], message })), unreadable: true }
}

/** A file that yields no document at all: this one error. */
function withoutDocument(file: string, diagnostic: Diagnostic): LoadedConfig {
  return { config: undefined, diagnostics: [diagnostic], secretRefs: [], file, locate: createLocator(undefined, new LineCounter()) }
}

/** Aliases expanded at most this often: a few anchors that double each other ("billion laughs") stop here. */
const MAX_ALIAS_COUNT = 100
/**
 * Values the document may hold once its aliases are expanded. The alias count alone lets 99
 * aliases of one large anchored list multiply it 99 times: a 40 KB draft was validated for 16 s
 * on the gateway's thread (POST /api/replay), and 100 KB ran out of heap. The largest configs
 * measured (10,000 routes) hold ~100,000.
 */
const MAX_VALUES = 500_000
/** Entries one list may hold: zod collects a list's problems with a spread, which overflows the stack past ~120,000. */
const MAX_LIST = 50_000
const EMPTY = 'the file holds no config (it is empty, or only comments)'
const MULTIPLE_DOCUMENTS = 'a second YAML document starts here (a line "---" after the first): a config is one document, so remove the line or split the file'
/** Said when the parser, the composer or a check after them runs out of stack on a file's depth (yaml said "Maximum call stack size exceeded"). */
const NESTING = 'the file nests too deeply to be read (a config nests a few levels)'

/** Problems reported at most: the first ones say what is wrong; a million more say nothing new. */
const MAX_DIAGNOSTICS = 1_000

/** `options.unset`: see InterpolateOptions (a replay's draft reads no environment). */
export function loadConfigText(withMark: string, file: string, env: NodeJS.ProcessEnv = process.env, options: InterpolateOptions = {}): LoadedConfig {
  // A byte order mark (a file saved by Notepad) is no column: kept, every problem on line 1 was one column off.
  const text = withMark.charCodeAt(0) === 0xfeff ? withMark.slice(1) : withMark
  const lines = new LineCounter()
  let doc: Document
  try {
    // uniqueKeys: false, and duplicateKeyOffsets() instead: yaml's own check is quadratic.
    doc = parseDocument(text, { lineCounter: lines, prettyErrors: false, uniqueKeys: false })
  } catch (err) {
    // yaml's parser recurses once per nested collection and, unlike its composer, lets running
    // out of stack escape: 5,000 nested "- " then "}" threw a RangeError (found by fuzzing).
    if (!outOfStack(err)) throw err
    return withoutDocument(file, { severity: 'error', path: [], message: NESTING, line: 1, col: 1 })
  }
  try {
    return loadDocument(doc, text, lines, file, env, options)
  } catch (err) {
    // Past the parser the file is read, and its depth is not the cause: a flat map of 130,000 bad
    // header names (zod spreads a list's problems into its parent's) was called "nests too deeply".
    if (!outOfStack(err)) throw err
    return withoutDocument(file, { severity: 'error', path: [], message: 'bouncer ran out of stack while checking the file, a limit of its own and not the file\'s nesting: please report it', line: 1, col: 1 })
  }
}

function outOfStack(err: unknown): boolean {
  return err instanceof RangeError && /call stack/i.test(err.message)
}

function loadDocument(doc: Document, text: string, lines: LineCounter, file: string, env: NodeJS.ProcessEnv, options: InterpolateOptions): LoadedConfig {
  const locate = createLocator(doc, lines)
  const diagnostics: Diagnostic[] = []
  const result = (config?: Config, secretRefs: SecretReference[] = []): LoadedConfig => ({
    config,
    diagnostics,
    secretRefs,
    file,
    locate,
  })

  // A second document told the user to call YAML.parseAllDocuments() (yaml's words to a programmer).
  const yamlErrors = doc.errors.map((error) => ({ offset: error.pos[0], message: error.code === 'MULTIPLE_DOCS' ? MULTIPLE_DOCUMENTS : yamlMessage(error.message) }))
  // The composer reports an overflow at every level it unwinds through (1 here, 37 in CI): said once.
  const firstNesting = yamlErrors.findIndex((error) => error.message === NESTING)
  if (firstNesting !== -1) yamlErrors.splice(0, yamlErrors.length, ...yamlErrors.filter((error, i) => error.message !== NESTING || i === firstNesting))
  for (const offset of duplicateKeyOffsets(doc)) yamlErrors.push({ offset, message: 'Map keys must be unique' })
  // A merge key was read as a key named "<<": `unknown key "<<"` beside "an upstream needs url",
  // the keys it was to bring in being missing (found by an adversarial probe).
  for (const offset of mergeKeyOffsets(doc)) yamlErrors.push({ offset, message: MERGE_KEY })
  for (const offset of collectionKeyOffsets(doc)) yamlErrors.push({ offset, message: COLLECTION_KEY })
  // yaml warns of a tag it does not know and keeps the value's text: `token: !env ADMIN_TOKEN` was
  // the admin token "ADMIN_TOKEN", and check said ok (found by an adversarial probe).
  for (const warning of doc.warnings) {
    if (warning.code !== 'TAG_RESOLVE_FAILED') continue
    const tag = /^!\S*/.exec(text.slice(warning.pos[0]))?.[0] ?? yamlMessage(warning.message).replace(/^Unresolved tag: /, '')
    yamlErrors.push({ offset: warning.pos[0], message: `the YAML tag ${tag} is not understood here (its value would be taken as plain text): a value from elsewhere is written \${env:NAME} or \${secret:NAME}` })
  }
  for (const { offset, message } of yamlErrors.sort((a, b) => a.offset - b.offset)) {
    const { line, col } = lines.linePos(offset)
    diagnostics.push({ severity: 'error', path: [], message, line: Math.max(line, 1), col })
  }
  if (diagnostics.length > 0) return result()
  // Nothing (or only comments, or a lone `~`) was a valid config of defaults: a file truncated
  // mid-write and reloaded (SIGHUP, watch_config) dropped every route and the admin token, so the
  // admin API could not reload again (found by an adversarial probe). `{}` still says "defaults".
  if (doc.contents === null || (isScalar(doc.contents) && doc.contents.value === null)) {
    diagnostics.push({ severity: 'error', path: [], message: EMPTY, line: 1, col: 1 })
    return result()
  }

  const findings: Finding[] = []
  const typed: TypedValue[] = []
  const secretRefs = interpolate(doc, env, findings, options, typed)
  // Keys alike once ${env:…} in them is replaced: the later one silently won.
  for (const offset of duplicateKeyOffsets(doc)) {
    const { line, col } = lines.linePos(offset)
    diagnostics.push({ severity: 'error', path: [], message: 'Map keys must be unique: this key is an earlier one once its ${env:…} is replaced', line: Math.max(line, 1), col })
  }
  let raw: unknown
  try {
    raw = doc.toJS({ maxAliasCount: MAX_ALIAS_COUNT }) ?? {}
  } catch (err) {
    diagnostics.push(aliasDiagnostic(doc, lines, err))
    return result()
  }
  const oversized = oversizeOf(raw)
  if (oversized !== null) {
    for (const finding of [...findings.slice(0, MAX_DIAGNOSTICS), oversized]) diagnostics.push(locate(finding))
    return result()
  }
  for (const finding of applyListenVariables(raw, env)) findings.push(finding)
  for (const finding of prototypeKeysOf(raw)) findings.push(finding)
  let parsed = configSchema.safeParse(raw)
  if (!parsed.success && asText(raw, parsed.error.issues, typed)) parsed = configSchema.safeParse(raw)
  let config: Config | undefined
  if (!parsed.success) {
    // A value already reported by interpolation (a missing variable) is not reported twice.
    const reported = new Set(findings.map((f) => f.path.join('\0')))
    for (const issue of parsed.error.issues) {
      for (const finding of findingsOf(issue, raw)) if (!reported.has(finding.path.join('\0'))) findings.push(finding)
    }
  } else {
    config = resolveFilePaths(parsed.data, dirname(resolve(file)))
    for (const finding of crossCheck(config, secretRefs)) findings.push(finding)
  }
  for (const finding of findings.slice(0, MAX_DIAGNOSTICS)) diagnostics.push(locate(finding))
  diagnostics.sort((a, b) => a.line - b.line || a.col - b.col)
  if (findings.length > MAX_DIAGNOSTICS) {
    const last = diagnostics.at(-1) as Diagnostic
    diagnostics.push({ severity: 'error', path: [], message: `and ${(findings.length - MAX_DIAGNOSTICS).toLocaleString('en')} more problems, not listed`, line: last.line, col: last.col })
  }
  const failed = diagnostics.some((d) => d.severity === 'error')
  return result(failed ? undefined : config, secretRefs)
}

/**
 * Why the document is too large to validate, or null: more than MAX_VALUES values with every alias
 * expanded (an alias is the same object twice in toJS's output: counted once per place, each
 * object walked once), or a list longer than MAX_LIST.
 */
/**
 * Every key named `__proto__`: the parsed map has it as its own, but a name-to-value map of the
 * schema (zod's record: a function's environment, an upstream's headers) leaves it out without a
 * word, so a function's `environment: {__proto__: …}` passed check and its handler never had it (a
 * probe). Each object once: an alias shares one.
 */
function prototypeKeysOf(value: unknown): Finding[] {
  const found: Finding[] = []
  const seen = new Set<object>()
  const walk = (v: unknown, path: ConfigPath): void => {
    if (v === null || typeof v !== 'object' || seen.has(v)) return
    seen.add(v)
    if (!Array.isArray(v) && Object.hasOwn(v, '__proto__')) found.push({ severity: 'error', path: [...path, '__proto__'], message: 'a key cannot be named __proto__ (it would be dropped, not taken)', atKey: true })
    for (const [key, child] of Object.entries(v)) walk(child, [...path, Array.isArray(v) ? Number(key) : key])
  }
  walk(value, [])
  return found
}

function oversizeOf(value: unknown): Finding | null {
  const limit = MAX_VALUES
  const sizes = new Map<object, number>()
  let refused: Finding | null = null
  const inside = new Set<object>()
  const sizeOf = (v: unknown, path: ConfigPath): number => {
    if (v === null || typeof v !== 'object') return 1
    if (inside.has(v)) {
      refused ??= { severity: 'error', path, message: 'this value holds itself (an alias to one of its own parents)' }
      return limit + 1
    }
    const known = sizes.get(v)
    if (known !== undefined) return known
    if (Array.isArray(v) && v.length > MAX_LIST) {
      refused = { severity: 'error', path, message: `this list holds ${v.length.toLocaleString('en')} entries, more than the ${MAX_LIST.toLocaleString('en')} any list of a config may hold` }
      return limit + 1
    }
    inside.add(v)
    let size = 1
    for (const [key, child] of Object.entries(v)) {
      size += sizeOf(child, [...path, Array.isArray(v) ? Number(key) : key])
      if (size > limit) break
    }
    inside.delete(v)
    sizes.set(v, size)
    return size
  }
  const size = sizeOf(value, [])
  if (refused !== null) return refused
  if (size > limit) return { severity: 'error', path: [], message: `the config holds more than ${limit.toLocaleString('en')} values once its aliases are expanded: no gateway config is that large` }
  return null
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

const MERGE_KEY = 'YAML merge keys ("<<: *name") are not supported: write the keys out in full (an alias may still stand for a whole value, e.g. "headers: *common")'

/** Where a map has a plain `<<` key (a quoted "<<" is a key like any other). */
function mergeKeyOffsets(doc: Document): number[] {
  const offsets: number[] = []
  visit(doc, {
    Pair(_key, pair) {
      if (isScalar(pair.key) && pair.key.value === '<<' && pair.key.type === 'PLAIN') offsets.push(pair.key.range?.[0] ?? 0)
    },
  })
  return offsets
}

const COLLECTION_KEY = 'a key is a name, not a list, a map or a typed value (YAML\'s "? [a, b]", "{a: 1}: x" or "!!binary aGk=: x"): write the key as plain text'

/**
 * Where a map's key is itself a list or a map. toJS turned it into its text, so check said `unknown
 * key "[ a, b ]"` at the file's first line, and Node printed yaml's warning to a programmer
 * ("Set mapAsMap: true") on stderr beside it (found by fuzzing). An alias key standing for a list or
 * a map (`a: &x [b]` then `*x : 1`) is one too (found by fuzzing again), and so is a scalar key that
 * reads as an object: a `!!binary` Buffer or a `!!timestamp` Date (the same warning). Anchors are read as the
 * walk meets them, the latest of a name standing (YAML's rule): yaml's Alias.resolve searches the
 * whole document, and 9,000 alias keys in 64 KB took 100 s (the fuzz test's own example).
 */
function collectionKeyOffsets(doc: Document): number[] {
  const offsets: number[] = []
  const anchored = new Map<string, unknown>()
  visit(doc, {
    Node(_key, node) {
      if (!isAlias(node) && node.anchor) anchored.set(node.anchor, node)
    },
    Pair(_key, pair) {
      const key = isAlias(pair.key) ? anchored.get(pair.key.source) : pair.key
      if (isCollection(key) || (isScalar(key) && typeof key.value === 'object' && key.value !== null)) offsets.push((pair.key as Node | null)?.range?.[0] ?? 0)
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


/**
 * A whole `${env:…}` that reads as a number or a boolean, put back as its text where the schema
 * asks for text: a header `X-Tenant: ${env:TENANT}` of 0042, or an all-digit token, was refused
 * with "expected string, received number", quoted or not (found by an adversarial probe). True
 * when any was, for a second validation.
 */
function asText(raw: unknown, issues: ReadonlyArray<{ code: string; path: PropertyKey[]; expected?: unknown }>, typed: readonly TypedValue[]): boolean {
  if (typed.length === 0) return false
  const texts = new Map(typed.map((value) => [value.path.join('\0'), value.text]))
  let changed = false
  for (const issue of issues) {
    if (issue.code !== 'invalid_type' || issue.expected !== 'string') continue
    const text = texts.get(issue.path.map(String).join('\0'))
    const parent = valueAt(raw, issue.path.slice(0, -1).map((p) => (typeof p === 'number' ? p : String(p))))
    if (text === undefined || parent === null || typeof parent !== 'object') continue
    const holder = parent as Record<PropertyKey, unknown>
    holder[issue.path.at(-1) as PropertyKey] = text
    changed = true
  }
  return changed
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
  if (/call stack/i.test(message)) return NESTING
  return message.split('\n')[0]?.replace(/ at line \d+, column \d+.*$/, '') ?? message
}
