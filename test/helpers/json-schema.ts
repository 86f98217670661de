// A small JSON Schema (draft 2020-12) checker for the keywords our schemas use: the config's schema
// (schema/bouncer.schema.json) and the admin API's OpenAPI document. Enough to test documents
// against them without a validator dependency; a keyword it does not know fails loudly, so a
// schema cannot grow past it unnoticed.
export type Schema = { [keyword: string]: unknown }

const KNOWN = new Set([
  '$schema', '$ref', '$defs', 'title', 'description', 'default', 'examples', 'deprecated', 'readOnly',
  'type', 'enum', 'const', 'properties', 'required', 'additionalProperties', 'propertyNames', 'items',
  'minItems', 'maxItems', 'minLength', 'maxLength', 'pattern', 'format', 'minimum', 'maximum', 'anyOf', 'oneOf', 'allOf',
])

/** Every way `value` breaks `schema`, as `path: reason` lines; empty when it conforms. */
export function schemaErrors(value: unknown, schema: Schema, root: Schema = schema, path = '$'): string[] {
  const unknown = Object.keys(schema).filter((k) => !KNOWN.has(k))
  if (unknown.length > 0) throw new Error(`${path}: the checker does not know ${unknown.join(', ')}`)
  if (typeof schema.$ref === 'string') return schemaErrors(value, resolve(root, schema.$ref), root, path)
  const errors: string[] = []
  const fail = (reason: string) => errors.push(`${path}: ${reason}`)

  if (schema.type !== undefined) {
    const types = Array.isArray(schema.type) ? (schema.type as string[]) : [schema.type as string]
    if (!types.some((t) => isType(value, t))) return [`${path}: expected ${types.join(' or ')}, got ${JSON.stringify(value)?.slice(0, 80)}`]
  }
  if (schema.enum !== undefined && !(schema.enum as unknown[]).some((e) => deepEqual(e, value))) fail(`${JSON.stringify(value)} is not one of ${JSON.stringify(schema.enum)}`)
  if (schema.const !== undefined && !deepEqual(schema.const, value)) fail(`expected ${JSON.stringify(schema.const)}`)

  if (typeof value === 'string') {
    if (typeof schema.pattern === 'string' && !new RegExp(schema.pattern, 'u').test(value)) fail(`${JSON.stringify(value)} does not match ${schema.pattern}`)
    if (typeof schema.minLength === 'number' && [...value].length < schema.minLength) fail(`shorter than ${schema.minLength}`)
    if (typeof schema.maxLength === 'number' && [...value].length > schema.maxLength) fail(`longer than ${schema.maxLength}`)
  }
  if (typeof value === 'number') {
    if (typeof schema.minimum === 'number' && value < schema.minimum) fail(`less than ${schema.minimum}`)
    if (typeof schema.maximum === 'number' && value > schema.maximum) fail(`more than ${schema.maximum}`)
  }
  if (Array.isArray(value)) {
    if (typeof schema.minItems === 'number' && value.length < schema.minItems) fail(`fewer than ${schema.minItems} items`)
    if (typeof schema.maxItems === 'number' && value.length > schema.maxItems) fail(`more than ${schema.maxItems} items`)
    if (isSchema(schema.items)) value.forEach((item, i) => errors.push(...schemaErrors(item, schema.items as Schema, root, `${path}[${i}]`)))
  }
  if (isObject(value)) {
    const properties = (schema.properties ?? {}) as Record<string, Schema>
    for (const key of (schema.required ?? []) as string[]) if (!(key in value)) fail(`missing required "${key}"`)
    for (const [key, item] of Object.entries(value)) {
      const at = `${path}.${key}`
      if (isSchema(schema.propertyNames)) errors.push(...schemaErrors(key, schema.propertyNames, root, `${at} (name)`))
      if (properties[key]) errors.push(...schemaErrors(item, properties[key], root, at))
      else if (schema.additionalProperties === false) errors.push(`${at}: not allowed (additionalProperties: false)`)
      else if (isSchema(schema.additionalProperties)) errors.push(...schemaErrors(item, schema.additionalProperties, root, at))
    }
  }
  if (Array.isArray(schema.allOf)) for (const sub of schema.allOf as Schema[]) errors.push(...schemaErrors(value, sub, root, path))
  if (Array.isArray(schema.anyOf)) {
    const results = (schema.anyOf as Schema[]).map((sub) => schemaErrors(value, sub, root, path))
    if (!results.some((r) => r.length === 0)) fail(`matches none of anyOf: ${results.map((r) => r.join('; ')).join(' | ')}`)
  }
  if (Array.isArray(schema.oneOf)) {
    const results = (schema.oneOf as Schema[]).map((sub) => schemaErrors(value, sub, root, path))
    const matched = results.filter((r) => r.length === 0).length
    if (matched !== 1) fail(`matches ${matched} of oneOf, not exactly one: ${results.map((r) => r.join('; ') || 'ok').join(' | ')}`)
  }
  return errors
}

/** A local reference: `#/$defs/x`, `#/components/schemas/Y` (JSON Pointer, RFC 6901). */
function resolve(root: Schema, ref: string): Schema {
  if (!ref.startsWith('#/')) throw new Error(`only local references are supported: ${ref}`)
  let node: unknown = root
  for (const part of ref.slice(2).split('/')) {
    node = (node as Record<string, unknown> | undefined)?.[part.replaceAll('~1', '/').replaceAll('~0', '~')]
  }
  if (!isSchema(node)) throw new Error(`unresolved reference ${ref}`)
  return node
}

function isType(value: unknown, type: string): boolean {
  switch (type) {
    case 'null': return value === null
    case 'boolean': return typeof value === 'boolean'
    case 'string': return typeof value === 'string'
    case 'number': return typeof value === 'number' && Number.isFinite(value)
    case 'integer': return Number.isInteger(value)
    case 'array': return Array.isArray(value)
    case 'object': return isObject(value)
    default: throw new Error(`unknown type ${type}`)
  }
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value)
}

function isSchema(value: unknown): value is Schema {
  return isObject(value)
}

function deepEqual(a: unknown, b: unknown): boolean {
  return JSON.stringify(a) === JSON.stringify(b)
}
