// The config's JSON Schema (draft 2020-12), generated from the zod definition that validates it:
// for editors (yaml-language-server completes and checks keys as you type), `bouncer schema`, the
// shipped schema/bouncer.schema.json and the admin API's OpenAPI document. It describes the file
// as written: the input side of every transform (a duration is a string like `30s`, with a
// pattern), and, for the file, `${env:NAME}` wherever a typed value may stand, since the loader
// replaces references before it validates. Cross-references (a route's upstream must exist) stay
// `bouncer check`'s: a schema cannot say them. A refinement is code, lost here: where it bounds a
// value the schema can say (a port, a prefix length, a duration's least), the value's `.meta()`
// gives the pattern that says it (schema.ts), so an editor refuses what check refuses.
import { z } from 'zod'
import { configSchema } from './schema.ts'

export type JsonSchema = { [keyword: string]: unknown }

const ENV_REFERENCE: JsonSchema = {
  type: 'string',
  pattern: '\\$\\{env:[^}]+\\}',
  description: 'an ${env:NAME} (or ${env:NAME:-default}) reference, replaced by the variable when the config is loaded',
}

/** Keywords whose value is a schema, a list of schemas, or a map of schemas (the ones zod emits). */
const SUBSCHEMA = ['items', 'additionalProperties', 'propertyNames', 'not'] as const
const SUBSCHEMA_LISTS = ['anyOf', 'oneOf', 'allOf', 'prefixItems'] as const
const SUBSCHEMA_MAPS = ['properties', '$defs'] as const

export interface JsonSchemaOptions {
  /** Accept `${env:NAME}` for typed values: true for the file as written, false for values as served. */
  envReferences: boolean
}

export function configJsonSchema(options: JsonSchemaOptions = { envReferences: true }): JsonSchema {
  const generated = z.toJSONSchema(configSchema, { target: 'draft-2020-12', io: 'input', unrepresentable: 'any' }) as JsonSchema
  const { $schema, ...body } = tidy(generated, options)
  return {
    $schema,
    title: 'Bouncer configuration (bouncer.yaml)',
    description: 'The config file of Bouncer, the identity-aware API gateway. `bouncer check` validates it completely, references between sections included.',
    ...body,
    ...(options.envReferences ? { $defs: { env_reference: ENV_REFERENCE } } : {}),
  }
}

function tidy(node: JsonSchema, options: JsonSchemaOptions): JsonSchema {
  const out: JsonSchema = {}
  for (const [keyword, value] of Object.entries(node)) {
    // z.number().int() bounds every integer by the safe range: true, and noise to a reader.
    if ((keyword === 'maximum' && value === Number.MAX_SAFE_INTEGER) || (keyword === 'minimum' && value === Number.MIN_SAFE_INTEGER)) continue
    if ((SUBSCHEMA as readonly string[]).includes(keyword) && isSchema(value)) out[keyword] = tidy(value, options)
    else if ((SUBSCHEMA_LISTS as readonly string[]).includes(keyword) && Array.isArray(value)) out[keyword] = value.map((v: JsonSchema) => tidy(v, options))
    else if ((SUBSCHEMA_MAPS as readonly string[]).includes(keyword) && isSchema(value)) {
      out[keyword] = Object.fromEntries(Object.entries(value).map(([name, v]) => [name, tidy(v as JsonSchema, options)]))
    } else out[keyword] = value
  }
  return options.envReferences && typedValue(out) ? orEnvReference(out) : out
}

function isSchema(value: unknown): value is JsonSchema {
  return typeof value === 'object' && value !== null && !Array.isArray(value)
}

/** A value that `${env:NAME}` written in its place would not satisfy as it stands. */
function typedValue(schema: JsonSchema): boolean {
  if (schema.const !== undefined) return false // a discriminator (`type: redis`) is written as is
  if (schema.type === 'integer' || schema.type === 'number' || schema.type === 'boolean') return true
  return schema.type === 'string' && (schema.pattern !== undefined || schema.enum !== undefined || schema.format !== undefined)
}

/** The value as typed, or a reference; the default and the description stay outside, where editors show them. */
function orEnvReference(schema: JsonSchema): JsonSchema {
  const { default: fallback, description, ...typed } = schema
  return {
    ...(description === undefined ? {} : { description }),
    ...(fallback === undefined ? {} : { default: fallback }),
    anyOf: [typed, { $ref: '#/$defs/env_reference' }],
  }
}
