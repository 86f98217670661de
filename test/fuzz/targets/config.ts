// The config loader (src/config/load.ts loadConfigText): arbitrary YAML text, and structures
// mutated from the example configs. Whatever the input, the answer is diagnostics (each with a
// line and a column) or a config whose values are within their bounds; never an exception.
import { readdirSync, readFileSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import fc from 'fast-check'
import { parse as parseYaml, parseDocument, stringify } from 'yaml'
import { formatDiagnostic, loadConfigText, type Config, type LoadedConfig } from '../../../src/config/index.ts'
import { anyText, fuzzTarget, LARGE_INPUT_BYTES, largeInput, withinCpu } from '../lib.ts'

const EXAMPLES_DIR = fileURLToPath(new URL('../../../examples/', import.meta.url))

/** The examples' `${env:…}` variables, set; everything else is unset. */
const ENV: NodeJS.ProcessEnv = {
  AUDIT_DATABASE_URL: 'postgres://127.0.0.1/audit', BOUNCER_ADMIN_TOKEN: 'admin-token', BOUNCER_SECRETS_DIR: '/run/secrets',
  DEMO_API_URL: 'http://127.0.0.1:9500', DEMO_DATA_DIR: './data', DEMO_ISSUER: 'http://127.0.0.1:9400', LB_CIDR: '10.0.0.0/8',
  REDIS_URL: 'redis://127.0.0.1:6379', REPORTS_API_KEY: 'key', PORT: '8080',
}

function exampleTexts(): string[] {
  return readdirSync(EXAMPLES_DIR, { withFileTypes: true })
    .filter((entry) => entry.isDirectory())
    .flatMap((entry) => {
      try {
        return [readFileSync(`${EXAMPLES_DIR}${entry.name}/bouncer.yaml`, 'utf8')]
      } catch {
        return []
      }
    })
}

/** A ratio parsed from a percentage (`retries.budget: 20%` is 0.2). */
const RATIO = /\.budget$/
/** Values a dataset's or a tool's parameters are checked against: the caller's data, not a bound of the gateway's. */
const PARAMETER_VALUE = /\.(params|query)\.[^.]+\.(min|max|default)(\.\d+)?$/

/**
 * Every number in an accepted config is a count, a size, a port or milliseconds: a safe integer,
 * not negative; a ratio between 0 and 1; or a parameter's own value.
 */
function checkBounds(config: Config): void {
  const seen = new Set<object>()
  const walk = (value: unknown, path: string): void => {
    if (typeof value === 'number') {
      if (PARAMETER_VALUE.test(path)) return
      const inBounds = RATIO.test(path) ? value >= 0 && value <= 1 : Number.isSafeInteger(value) && value >= 0
      if (!inBounds) throw new Error(`accepted config holds ${value} at ${path}`)
      return
    }
    if (typeof value !== 'object' || value === null || seen.has(value)) return
    seen.add(value)
    if (value instanceof Set || value instanceof Map) return
    for (const [key, child] of Object.entries(value)) walk(child, `${path}.${key}`)
  }
  walk(config, 'config')
  for (const [where, ms] of timerDurations(config)) {
    if (ms > MAX_TIMER_MS) throw new Error(`accepted ${where}: ${ms} ms, which a Node timer runs after 1 ms`)
  }
}

/** Node keeps a timer for at most 2^31 - 1 ms (24.8 days): a longer one fires after 1 ms, with a warning. */
const MAX_TIMER_MS = 2 ** 31 - 1

/** Every duration of the config that the gateway (or ioredis) hands to setTimeout or setInterval. */
function timerDurations(config: Config): Array<[string, number]> {
  const { server, audit, limits_store: store, secrets } = config
  return [
    ['server.shutdown_timeout', server.shutdown_timeout],
    ['audit.flush_interval', audit.flush_interval],
    ...(store.type === 'redis' ? [['limits_store.timeout', store.timeout] as [string, number]] : []),
    ...(secrets ? [['secrets.refresh_interval', secrets.refresh_interval] as [string, number]] : []),
    ...config.issuers.flatMap((issuer, i): Array<[string, number]> => issuer.type !== 'jwt' ? [] : [
      [`issuers[${i}].jwks_refresh_interval`, issuer.jwks_refresh_interval],
      [`issuers[${i}].jwks_cooldown`, issuer.jwks_cooldown],
    ]),
    ...(config.mcp?.servers ?? []).flatMap((server, i): Array<[string, number]> => [
      [`mcp.servers[${i}].timeout`, server.timeout],
      [`mcp.servers[${i}].max_call_time`, server.max_call_time],
    ]),
  ]
}

function checkLoaded(loaded: LoadedConfig): void {
  for (const d of loaded.diagnostics) {
    if (d.severity !== 'error' && d.severity !== 'warning') throw new Error(`diagnostic severity ${String(d.severity)}`)
    if (!(Number.isInteger(d.line) && d.line >= 1 && Number.isInteger(d.col) && d.col >= 1)) throw new Error(`diagnostic at ${d.line}:${d.col}: ${d.message}`)
    if (typeof d.message !== 'string' || d.message === '') throw new Error('a diagnostic without a message')
    formatDiagnostic('fuzz.yaml', d)
  }
  const failed = loaded.diagnostics.some((d) => d.severity === 'error')
  if (failed === (loaded.config !== undefined)) throw new Error(`config ${loaded.config ? 'present' : 'absent'} with ${failed ? 'errors' : 'no errors'}`)
  if (loaded.config) checkBounds(loaded.config)
}

function load(text: string): LoadedConfig {
  return loadConfigText(text, 'fuzz.yaml', ENV)
}

// --- arbitrary YAML text ----------------------------------------------------------------------

const KEYS = [
  'server', 'listen', 'admin', 'token', 'issuers', 'name', 'issuer', 'audiences', 'algorithms', 'clock_tolerance', 'jwks_refresh_interval',
  'roles', 'assumed_by', 'subject', 'claims', 'policies', 'statements', 'effect', 'actions', 'routes', 'conditions', 'source_ip',
  'upstreams', 'url', 'timeout', 'headers', 'path', 'upstream', 'upstream_path', 'methods', 'limits', 'key', 'rate', 'burst', 'quota',
  'limits_store', 'type', 'audit', 'sinks', 'retention', 'secrets', 'store', 'telemetry', 'trusted_proxies', 'hosts', '__proto__',
  'constructor', 'toString', '<<', 'public', 'max_body_bytes', 'request_timeout', 'flush_interval', 'refresh_interval', 'rotation', 'every',
]
const SCALARS = [
  '30s', '5m', '0ms', '1d', '24d', '25d', '36500d', `${'9'.repeat(30)}d`, `${'9'.repeat(400)}ms`, '10/s', '0/s', `${'9'.repeat(30)}/s`,
  '10.0.0.0/8', 'fe80::1%eth0/64', '::/0', '127.0.0.1:0', '[::1]:8080', 'http://127.0.0.1:9500', 'GET', '*', 'allow', 'deny', 'memory',
  'redis', 'sqlite', 'stdout', '/a/:id/*', '/', '/..', 'sales.*', '*a*b*c', 'true', 'false', 'null', '~', '.inf', '-.inf', '.nan',
  '1e999', '-0', '0x10', '0o7', '1_000', '2.5', '-1', '9007199254740993', "''", '""', '"\\u0000"', "'it''s'", '${env:PORT}',
  '${env:UNSET}', '${env:UNSET:-7}', '${env:__proto__}', '${env:constructor}', '${env:toString}', '${secret:s}', '${other:x}', '${env:',
  '!!binary aGk=', '!!str 5', '!!int 5', '!!float x', '!!set {a}', '!!omap [a: 1]', '!!timestamp 2020-01-01', '!custom x', '&a', '*a', '*b',
]
const STRUCTURE = [': ', ':', '- ', '-', '{', '}', '[', ']', ', ', '? ', '|', '>-', '#', '---', '...', '%YAML 1.2', '%TAG ! tag:x:', '\t', '"', "'", '&', '*']

const line = fc
  .tuple(
    fc.constantFrom('', '  ', '    ', '      ', ' ', '- ', '  - '),
    fc.array(fc.oneof({ weight: 3, arbitrary: fc.constantFrom(...KEYS).map((k) => `${k}: `) }, { weight: 3, arbitrary: fc.constantFrom(...SCALARS) }, { weight: 2, arbitrary: fc.constantFrom(...STRUCTURE) }, { weight: 1, arbitrary: anyText }), { maxLength: 5 }),
  )
  .map(([indent, tokens]) => `${indent}${tokens.join('')}`)

/** Anchors each doubling the last: resource exhaustion by aliases ("billion laughs"). */
const aliasBomb = fc.integer({ min: 1, max: 12 }).map((depth) => {
  const lines = ['a0: &a0 [x, x]']
  for (let i = 1; i <= depth; i++) lines.push(`a${i}: &a${i} [*a${i - 1}, *a${i - 1}]`)
  return `${lines.join('\n')}\n`
})

const yamlText = fc.oneof(
  { weight: 6, arbitrary: fc.array(line, { maxLength: 14 }).map((lines) => lines.join('\n')) },
  { weight: 1, arbitrary: aliasBomb },
  { weight: 1, arbitrary: anyText },
)

export const yamlTexts = fuzzTarget({
  name: 'config.yaml-text',
  longRuns: 40_000,
  property: () => fc.property(yamlText, (text) => checkLoaded(load(text))),
  examples: [
    // yaml's toJS() threw ReferenceErrors out of loadConfigText: an alias bomb, an alias to no anchor.
    ['a0: &a0 [x, x]\na1: &a1 [*a0, *a0]\na2: &a2 [*a1, *a1]\na3: &a3 [*a2, *a2]\na4: &a4 [*a3, *a3]\na5: &a5 [*a4, *a4]\n'],
    ['\n  *a'],
  ],
})

/** An example config with characters inserted, deleted or replaced. */
export const editedExamples = fuzzTarget({
  name: 'config.edited-text',
  longRuns: 20_000,
  property: () => {
    const examples = exampleTexts()
    const edit = fc.record({ at: fc.nat(), remove: fc.nat(12), insert: fc.oneof(fc.constantFrom(...STRUCTURE, ...SCALARS, '\n', '\n  ', ' '), anyText) })
    return fc.property(fc.nat(examples.length - 1), fc.array(edit, { minLength: 1, maxLength: 4 }), (which, edits) => {
      let text = examples[which] as string
      for (const { at, remove, insert } of edits) {
        const position = at % (text.length + 1)
        text = `${text.slice(0, position)}${insert}${text.slice(position + remove)}`
      }
      checkLoaded(load(text))
    })
  },
})

// --- structures mutated from the examples -----------------------------------------------------

type Tree = Record<string, unknown> | unknown[]

/** Values a config might be given by mistake or by malice, for any key. */
const VALUE = fc.oneof(
  { weight: 4, arbitrary: fc.constantFrom(...SCALARS) },
  { weight: 2, arbitrary: fc.jsonValue({ maxDepth: 3 }) },
  { weight: 1, arbitrary: fc.constantFrom(Number.MAX_SAFE_INTEGER + 2, 1e308, -1, 0.5, -0, 2 ** 31, 65_536, 65_537) },
  { weight: 1, arbitrary: fc.constantFrom<unknown>([], {}, [[[]]], { '': 1 }, JSON.parse('{"__proto__": {"x": 1}}'), ['${env:UNSET}']) },
  { weight: 1, arbitrary: anyText },
)

type TreeMutation =
  | { op: 'delete'; at: number[] }
  | { op: 'replace'; at: number[]; value: unknown }
  | { op: 'add'; at: number[]; key: string; value: unknown }
  | { op: 'duplicate'; at: number[] }
  | { op: 'share'; at: number[]; from: number[] }
  | { op: 'env'; at: number[]; name: string }

const where = fc.array(fc.nat(), { minLength: 1, maxLength: 5 })
const DURATION_KEYS = [
  'request_timeout', 'headers_timeout', 'keep_alive_timeout', 'shutdown_timeout', 'flush_interval', 'refresh_interval', 'retention',
  'jwks_refresh_interval', 'jwks_cooldown', 'clock_tolerance', 'connect_timeout', 'timeout', 'ttl', 'rotate_every',
]
const DURATIONS = ['0ms', '1ms', '30s', '24d', '25d', '30d', '36500d', '2147483647ms', '2147483648ms']
const treeMutation: fc.Arbitrary<TreeMutation> = fc.oneof(
  fc.record({ op: fc.constant('delete' as const), at: where }),
  fc.record({ op: fc.constant('replace' as const), at: where, value: VALUE }),
  fc.record({ op: fc.constant('add' as const), at: where, key: fc.oneof(fc.constantFrom(...KEYS), fc.string()), value: VALUE }),
  // A duration key, set where it may belong, to a value near a bound.
  fc.record({ op: fc.constant('add' as const), at: fc.array(fc.nat(), { maxLength: 2 }).map((at) => [...at, 0]), key: fc.constantFrom(...DURATION_KEYS), value: fc.constantFrom(...DURATIONS) }),
  fc.record({ op: fc.constant('duplicate' as const), at: where }),
  fc.record({ op: fc.constant('share' as const), at: where, from: where }),
  fc.record({ op: fc.constant('env' as const), at: where, name: fc.oneof(fc.constantFrom('UNSET', '__proto__', 'constructor', 'toString', 'hasOwnProperty', 'valueOf', 'PORT'), fc.string({ minLength: 1 }).filter((n) => !n.includes('}') && !n.includes(':-'))) }),
)

/** Walks down by indexes (each taken modulo the container's size): the container and the key of the last step. */
function locate(root: Tree, at: readonly number[]): { parent: Tree; key: string | number } | undefined {
  let parent: Tree = root
  for (let i = 0; i < at.length; i++) {
    const keys: Array<string | number> = Array.isArray(parent) ? parent.map((_, j) => j) : Object.keys(parent)
    if (keys.length === 0) return undefined
    const key = keys[(at[i] as number) % keys.length] as string | number
    const child = (parent as Record<string | number, unknown>)[key]
    const descend = i < at.length - 1 && typeof child === 'object' && child !== null && Object.keys(child).length > 0
    if (!descend) return { parent, key }
    parent = child as Tree
  }
  return undefined
}

function apply(root: Tree, m: TreeMutation, unsetNames: Set<string>): void {
  const spot = locate(root, m.at)
  if (!spot) return
  const { parent, key } = spot
  const set = (value: unknown) => {
    if (Array.isArray(parent)) parent[key as number] = value
    else Object.defineProperty(parent, key, { value, enumerable: true, writable: true, configurable: true })
  }
  switch (m.op) {
    case 'delete':
      if (Array.isArray(parent)) parent.splice(key as number, 1)
      else delete parent[key as string]
      return
    case 'replace':
      return set(m.value)
    case 'add': {
      const target = (parent as Record<string | number, unknown>)[key]
      if (Array.isArray(target)) target.push(m.value)
      else if (typeof target === 'object' && target !== null) Object.defineProperty(target, m.key, { value: m.value, enumerable: true, writable: true, configurable: true })
      else set({ [m.key]: m.value })
      return
    }
    case 'duplicate':
      if (Array.isArray(parent)) parent.push(structuredClone(parent[key as number]))
      return
    case 'share': {
      // The same object in two places (or inside itself): yaml writes an anchor and an alias.
      const from = locate(root, m.from)
      const value = from ? (from.parent as Record<string | number, unknown>)[from.key] : root
      if (typeof value === 'object' && value !== null) set(value)
      return
    }
    case 'env':
      if (!Object.hasOwn(ENV, m.name)) unsetNames.add(m.name)
      return set(`\${env:${m.name}}`)
  }
}

export const mutatedConfigs = fuzzTarget({
  name: 'config.mutated',
  longRuns: 40_000,
  property: () => {
    const examples = exampleTexts().map((text) => parseYaml(text) as Tree)
    return fc.property(fc.nat(examples.length - 1), fc.array(treeMutation, { minLength: 1, maxLength: 4 }), (which, mutations) => {
      const tree = structuredClone(examples[which]) as Tree
      const unsetNames = new Set<string>()
      for (const m of mutations) apply(tree, m, unsetNames)
      let text: string
      try {
        text = stringify(tree, { aliasDuplicateObjects: true })
      } catch {
        return // yaml cannot write it (a cycle through a key): not an input a user can have
      }
      const loaded = load(text)
      checkLoaded(loaded)
      // No interpolation happens on a file that is not YAML, nor on one with a merge key ("<<"), which
      // the loader refuses as it refuses a YAML error, before it reads any value (a counterexample
      // of CI's short run: `<<: 30s` beside an unset \${env: }, reported as the merge key alone).
      if (parseDocument(text).errors.length > 0 || loaded.diagnostics.some((d) => d.message.startsWith('YAML merge keys'))) return
      for (const name of unsetNames) {
        const reported = loaded.diagnostics.some((d) => d.message === `environment variable ${name} is not set`)
        const stillThere = text.includes(`\${env:${name}}`)
        if (stillThere && !reported) throw new Error(`\${env:${name}} is used, the variable is not set, and nothing says so`)
      }
    })
  },
  examples: [
    // A duration past 2^31 - 1 ms was accepted where it becomes a timer, which Node then runs after 1 ms.
    [0, [{ op: 'add', at: [0], key: 'shutdown_timeout', value: '30d' }, { op: 'share', at: [0], from: [0] }]],
    // `${env:__proto__}` read Object.prototype from the environment object: "set", as "[object Object]".
    [0, [{ op: 'env', at: [0], name: '__proto__' }, { op: 'share', at: [0], from: [0] }]],
    // A merge key beside an unset reference: the file is refused at the merge key, before interpolation.
    [1, [{ op: 'env', at: [0], name: ' ' }, { op: 'add', at: [595011451], key: '<<', value: '30s' }]],
  ],
})

export const largeConfigs = fuzzTarget({
  name: 'config.large',
  longRuns: 500,
  shortScale: 0.02,
  property: () => {
    const piece = fc.constantFrom('a', ' ', '-', ':', '[', ']', '{', '}', ',', '"', "'", '\n', '\n  ', '&a', '*a', '#', '${env:', '}', '/', '*')
    // YAML parsing and schema checks cost more per byte than a path does: the bound is per 64 KB file.
    return fc.property(largeInput(piece, LARGE_INPUT_BYTES), (text) => {
      withinCpu(2_000, 'loading a 64 KB config', () => checkLoaded(load(text)))
    })
  },
  examples: [
    // yaml's parser ran out of stack and threw (the long run's counterexample was 32,767 of them).
    [`${'- '.repeat(5_000)}}`],
    // yaml's duplicate-key check compared every key with every earlier one: 2 s for one 64 KB map.
    [`a\n${'*a:\n  \n'.repeat(9_000)}`],
    [`x:\n${Array.from({ length: 8_000 }, (_, i) => `  k${i}: 1\n`).join('')}`],
  ],
})
