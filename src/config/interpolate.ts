// `${env:NAME}` interpolation and `${secret:NAME}` references, on the parsed YAML document (so each
// finding keeps the position of the value it came from).
import { isPair, isScalar, parse as parseScalar, visit, type Document, type Scalar } from 'yaml'
import type { Finding } from './diagnostics.ts'

export interface SecretReference {
  name: string
  path: ReadonlyArray<string | number>
  /** The shortest value that place takes (a key), checked when the value is read (secrets/open.ts). */
  minLength?: number
  /** How the error names the place. */
  place?: string
}

const REFERENCE = /\$\{(\w+):([^}]*)\}/g
/**
 * Where a secret may be substituted, one entry per place (`*` is any key or index), and how the
 * error names it: other values are config an operator reads, never credentials.
 */
const SECRET_PLACES: ReadonlyArray<{ path: readonly string[]; name: string; minLength?: number }> = [
  { path: ['upstreams', '*', 'headers', '*'], name: "an upstream's headers" },
  { path: ['admin', 'token'], name: 'admin.token' },
  { path: ['admin', 'read_token'], name: 'admin.read_token' },
  { path: ['issuers', '*', 'introspection', 'client_secret'], name: "an issuer's introspection.client_secret" },
  { path: ['sign_in', 'client_secret'], name: 'sign_in.client_secret' },
  { path: ['token_exchange', 'signing', 'key'], name: 'token_exchange.signing.key' },
  { path: ['datasources', '*', 'url'], name: "a datasource's url" },
  // Its schema asks 16 characters of a key written in the file; one from the store is checked as it is read.
  { path: ['datasources', '*', 'key'], name: "a datasource's key", minLength: 16 },
  // README documents it and the runtime applies it (mcp.applySecrets); the list lacked it (found by an adversarial probe).
  { path: ['mcp', 'servers', '*', 'headers', '*'], name: "an MCP server's headers" },
  // A handler's credential (a database password): in the gateway's environment instead, every function could read it.
  { path: ['functions', '*', 'environment', '*'], name: "a function's environment" },
]
/** Every place, as `bouncer check` names them (the README lists the same, test/unit/doc2-secret-places.test.ts). */
export const SECRET_PLACE_NAMES = SECRET_PLACES.map((place) => place.name).join(', ')

function secretPlaceOf(path: ReadonlyArray<string | number>): (typeof SECRET_PLACES)[number] | undefined {
  return SECRET_PLACES.find((place) => place.path.length === path.length && place.path.every((part, i) => part === '*' || part === path[i]))
}

export interface InterpolateOptions {
  /**
   * A `${env:NAME}` that `env` does not set and that has no default is an error (a config the
   * gateway runs) unless this is given (a replay's draft, which reads no environment): then it stays
   * as written, or, a value that is one whole reference, takes what this answers for its place.
   */
  unset?: StandIn
  /** With `unset`: every reference kept as written, by the place that holds it (a draft's errors say why). */
  kept?: UnsetReference[]
}

/** An unset `${env:NAME}` a draft kept as written, and where. */
export interface UnsetReference {
  path: ReadonlyArray<string | number>
  name: string
}

/** What stands in for an unset `${env:NAME}` that is a whole value at `path` (an address never reached), or undefined to keep it as written. */
export type StandIn = (path: ReadonlyArray<string | number>) => string | undefined

/** A whole `${env:…}` read as a number or a boolean, with the text it was read from. */
export interface TypedValue {
  path: ReadonlyArray<string | number>
  text: string
}

/**
 * Replaces `${env:NAME}` (and `${env:NAME:-default}`) in every string; records `${secret:NAME}`.
 * `typed` gets each whole value that took another type than text, which the loader gives back its
 * text where the schema asks for text (load.ts, asText).
 */
export function interpolate(doc: Document, env: NodeJS.ProcessEnv, findings: Finding[], options: InterpolateOptions = {}, typed: TypedValue[] = []): SecretReference[] {
  const standIn = options.unset
  const keepUnset = standIn !== undefined
  const refs: SecretReference[] = []
  visit(doc, {
    Scalar(_key, node, ancestry) {
      if (typeof node.value !== 'string' || !node.value.includes('${')) return
      const parent = ancestry.at(-1)
      if (isPair(parent) && parent.key === node) return interpolateKey(node as Scalar<string>, pathOf(ancestry, node), env, findings, options)
      const path = pathOf(ancestry, node)
      const original = node.value
      let whole = false
      const replaced = original.replace(REFERENCE, (text, kind: string, body: string) => {
        if (kind === 'secret') {
          const place = secretPlaceOf(path)
          if (!place) {
            findings.push({ severity: 'error', path, message: `\${secret:${body}} may only stand in one of: ${SECRET_PLACE_NAMES}` })
          } else {
            refs.push({ name: body, path, ...(place.minLength === undefined ? {} : { minLength: place.minLength, place: place.name }) })
          }
          return text
        }
        if (kind !== 'env') {
          findings.push({ severity: 'error', path, message: `unknown reference "${text}": use \${env:NAME} or \${secret:NAME}` })
          return text
        }
        const [name = '', fallback] = splitDefault(body)
        // Own variables only: `${env:toString}` is not set, whatever Object.prototype holds.
        const set = Object.hasOwn(env, name) ? env[name] : undefined
        const value = set ?? fallback
        if (value === undefined && keepUnset) {
          const stood = text === original ? standIn(path) : undefined
          if (stood === undefined) {
            options.kept?.push({ path, name })
            return text
          }
          whole = true
          return stood
        }
        if (value === undefined) {
          findings.push({ severity: 'error', path, message: `environment variable ${name} is not set` })
          return ''
        }
        // The runtime puts secrets in wherever a value reads ${secret:NAME}: one that came in an
        // environment variable (or a default) sent the admin token to an upstream, and check said
        // ok (found by an adversarial probe). Never the value itself in the message.
        if (value.includes('${secret:')) {
          const source = set === undefined ? `the default of \${env:${name}}` : `environment variable ${name}`
          findings.push({ severity: 'error', path, message: `${source} holds a \${secret:…} reference: a value from the environment is taken as it is, so write \${secret:NAME} in the file itself` })
          return ''
        }
        if (fallback?.includes('${')) {
          findings.push({ severity: 'error', path, message: nestedDefault(name) })
          return ''
        }
        whole = text === original
        return value
      })
      // A value that is one whole `${env:…}` takes the type it spells (a port, a boolean).
      const value = whole ? scalarOf(replaced) : replaced
      if (typeof value !== 'string') typed.push({ path, text: replaced })
      node.value = value
    },
  })
  return refs
}

/**
 * A map key (a header's name) takes \${env:NAME} too; its problems are said at the key, under its
 * own name, and a key with one keeps its text. Handled as a value, a key's problem pointed at its
 * map, and \${secret:NAME} in a key was told it may stand in "an upstream's headers", where it
 * stood (found by an adversarial probe).
 */
function interpolateKey(node: Scalar<string>, mapPath: ReadonlyArray<string | number>, env: NodeJS.ProcessEnv, findings: Finding[], options: InterpolateOptions): void {
  const original = node.value
  const keepUnset = options.unset !== undefined
  const at = { severity: 'error' as const, path: [...mapPath, original], atKey: true }
  let failed = false
  const fail = (message: string, text: string): string => {
    findings.push({ ...at, message })
    failed = true
    return text
  }
  const replaced = original.replace(REFERENCE, (text, kind: string, body: string) => {
    if (kind !== 'env') return fail(`a key cannot hold ${text}: only \${env:NAME} stands in a key${kind === 'secret' ? ' (a secret stands in a value)' : ''}`, text)
    const [name = '', fallback] = splitDefault(body)
    if (fallback?.includes('${')) return fail(nestedDefault(name), text)
    const set = Object.hasOwn(env, name) ? env[name] : undefined
    const value = set ?? fallback
    if (value === undefined && keepUnset) {
      options.kept?.push({ path: at.path, name })
      return text
    }
    if (value === undefined) return fail(`environment variable ${name} is not set`, text)
    if (value.includes('${secret:')) return fail(`${set === undefined ? `the default of \${env:${name}}` : `environment variable ${name}`} holds a \${secret:…} reference: a key cannot hold one`, text)
    return value
  })
  if (!failed) node.value = replaced
}

/**
 * `${env:A:-${env:B}}`, nested as a shell or docker compose allows: the first `}` ends the
 * reference, so the value was the text "${env:B}" (A unset) or A's value and a stray "}" (A set),
 * and check said ok (found by an adversarial probe).
 */
function nestedDefault(name: string): string {
  return `the default of \${env:${name}} holds another reference: references do not nest (the first "}" ends this one), so write the default out`
}

function splitDefault(body: string): [string, string | undefined] {
  const at = body.indexOf(':-')
  return at === -1 ? [body, undefined] : [body.slice(0, at), body.slice(at + 2)]
}

function scalarOf(text: string): unknown {
  try {
    const value: unknown = parseScalar(text)
    return typeof value === 'number' || typeof value === 'boolean' ? value : text
  } catch {
    return text
  }
}

/** The config path of a node from the visitor's ancestry (maps give keys, sequences indices). */
function pathOf(ancestry: readonly unknown[], node: unknown): Array<string | number> {
  const path: Array<string | number> = []
  const chain = [...ancestry, node]
  for (let i = 1; i < chain.length; i++) {
    const parent = chain[i - 1] as { items?: unknown[]; key?: unknown; value?: unknown }
    const child = chain[i]
    if (parent && Array.isArray(parent.items)) {
      const index = parent.items.indexOf(child)
      // A pair inside a map contributes its key when we descend into its value.
      if (!isPairLike(child)) path.push(index)
    } else if (isPairLike(parent) && parent.value === child) {
      path.push(isScalar(parent.key) ? String(parent.key.value) : String(parent.key))
    }
  }
  return path
}

function isPairLike(node: unknown): node is { key: unknown; value: unknown } {
  return typeof node === 'object' && node !== null && 'key' in node && 'value' in node && !('items' in node)
}
