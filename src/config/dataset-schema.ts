// The shapes of datasources[] and routes[].dataset (SPEC "Datasets and functions"). Kept apart from
// schema.ts, which imports them; the checks that need the whole file are in dataset-checks.ts.
import { z } from 'zod'
import { parseDuration } from './values.ts'

const NAME = /^[A-Za-z0-9][A-Za-z0-9._:-]*$/

/** At least 16 characters, unless a secret stands there (its value is checked when it is resolved). */
const key = z.string().refine((text) => text.includes('${secret:') || text.length >= 16, 'a key is at least 16 characters')

const statementTimeout = z.string().transform((text, ctx): number => {
  const result = parseDuration(text)
  if (!result.ok) {
    ctx.addIssue({ code: 'custom', message: result.message })
    return z.NEVER
  }
  if (result.value < 1 || result.value > 3_600_000) {
    ctx.addIssue({ code: 'custom', message: 'a dataset timeout is 1ms to 1h' })
    return z.NEVER
  }
  return result.value
}).meta({ description: 'a duration from 1ms to 1h: 500ms, 30s, 5m, 1h', pattern: '^\\s*0*[1-9]\\d*(ms|s|m|h|d)\\s*$' })

/** PostgreSQL over a bounded pool, or an SQLite file opened read-only. */
export const datasourceSchema = z.discriminatedUnion('type', [
  z.strictObject({
    name: z.string().regex(NAME, 'a datasource name is letters, digits and . _ : - (starting with a letter or digit)'),
    type: z.literal('postgres'),
    /** May hold `${secret:NAME}` (the password): a rotated secret opens new connections with it, no restart. */
    url: z.string().regex(/^postgres(ql)?:\/\//, 'a PostgreSQL URL starts with postgres://'),
    max_connections: z.number().int().min(1).max(1_000).default(10),
    /** How long a request waits for a free connection (or a new one) before 502 datasource_error. */
    connect_timeout: statementTimeout.prefault('5s'),
    /** Keys the `hash` masks and signs the paging cursors; `${secret:NAME}`. Without it, a key made at start (hashes and cursors change on restart). */
    key: key.optional(),
  }),
  z.strictObject({
    name: z.string().regex(NAME, 'a datasource name is letters, digits and . _ : - (starting with a letter or digit)'),
    type: z.literal('sqlite'),
    /** Opened read-only: a dataset never writes to it. */
    path: z.string().min(1),
    key: key.optional(),
  }),
], { error: 'a datasource type is postgres or sqlite' })

export const PARAM_TYPES = ['string', 'int', 'number', 'bool', 'date', 'timestamp', 'enum'] as const

const scalar = z.union([z.string(), z.number(), z.boolean()])

const param = z.strictObject({
  type: z.enum(PARAM_TYPES, { error: `a parameter type is one of ${PARAM_TYPES.join(', ')}` }),
  /** Several values: `?id=1&id=2` or `?id=1,2`; bound as an array (PostgreSQL `= ANY(:id)`), as JSON text in SQLite (`IN (SELECT value FROM json_each(:id))`). */
  list: z.boolean().default(false),
  max_items: z.number().int().min(1).max(10_000).default(1_000),
  required: z.boolean().default(false),
  default: z.union([scalar, z.array(scalar)]).optional(),
  /** The values allowed (type enum needs them; a string may have them too). */
  enum: z.array(z.string()).min(1).optional(),
  values: z.array(z.string()).min(1).optional(),
  /** int, number: the value; string: its length; date, timestamp: the instant (relative allowed: -30d). */
  min: z.union([z.number(), z.string()]).optional(),
  max: z.union([z.number(), z.string()]).optional(),
})

export const MASK_KINDS = ['hash', 'email_domain', 'redact', 'null'] as const

const mask = z.strictObject({
  with: z.enum(MASK_KINDS, { error: `a mask is one of ${MASK_KINDS.join(', ')}` }),
  unless_roles: z.array(z.string()).default([]),
})

export const datasetSchema = z.strictObject({
  source: z.string(),
  /** One statement; `:name` binds a parameter, `:principal.sub`, `:claims.NAME`, `:roles` the caller's identity. */
  sql: z.string().min(1),
  params: z.record(z.string().regex(/^[A-Za-z_][A-Za-z0-9_]*$/, 'a parameter name is letters, digits and _'), param).default({}),
  /** Keyset paging: at most this many rows per response, the next page by a signed cursor. */
  page_size: z.number().int().min(1).max(10_000_000).optional(),
  /** The columns the result is ordered by for paging (ascending, unique together); the first column when not said. */
  key: z.union([z.string(), z.array(z.string()).min(1)]).optional().transform((key) => (key === undefined ? undefined : typeof key === 'string' ? [key] : key)),
  max_rows: z.number().int().min(1).max(1_000_000_000).default(1_000_000),
  timeout: statementTimeout.prefault('15s'),
  masks: z.record(z.string(), mask).default({}),
})

export type DatasourceConfig = z.output<typeof datasourceSchema>
export type DatasetConfig = z.output<typeof datasetSchema>
export type DatasetParamConfig = DatasetConfig['params'][string]
export type MaskConfig = DatasetConfig['masks'][string]
