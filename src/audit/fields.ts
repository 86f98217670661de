// The audit record's fields, defined once (issue 14). Everything that names a field reads this
// table: the record builder and its bounds (record.ts), the canonical JSON that is hashed, the
// SQLite and PostgreSQL columns and their in-place migration (sinks/), the search filters
// (search.ts), the spill-line check (spill-line.ts), the JSON output (`bouncer audit --json`, the
// stdout sink, GET /api/audit) and its OpenAPI schema.
//
// A new field is one line, before prev_hash, with `added: true` (which needs `nullable: true`):
// existing logs gain its column in place (ALTER TABLE … ADD COLUMN), records written before it read
// as null, and it is left out of the canonical JSON while null, so their hashes still verify. Where
// a request sets it, record.ts's recordLine says from what (the compiler asks for it there).

/** What a field holds: its JSON value, its SQL column in each sink, and its JSON Schema. */
export const FIELD_KINDS = {
  text: { sqlite: 'TEXT', postgres: 'text', schema: { type: 'string' } },
  /** RFC 3339 with milliseconds (SQLite keeps the text, and time_ms beside it for the indexes). */
  time: { sqlite: 'TEXT', postgres: 'timestamptz', schema: { type: 'string', description: 'RFC 3339, milliseconds' } },
  /** A whole number that fits PostgreSQL's integer. */
  integer: { sqlite: 'INTEGER', postgres: 'integer', schema: { type: 'integer' } },
  /** A whole number that may pass 2^31 (bytes). */
  count: { sqlite: 'INTEGER', postgres: 'bigint', schema: { type: 'integer' } },
  number: { sqlite: 'REAL', postgres: 'double precision', schema: { type: 'number' } },
  decision: { sqlite: 'TEXT', postgres: 'text', schema: { enum: ['allow', 'deny', 'error'] } },
  /** An array of strings: JSON text in SQLite, JSONB in PostgreSQL. */
  roles: { sqlite: 'TEXT', postgres: 'jsonb', schema: { type: 'array', items: { type: 'string' } } },
  /** 64 lower-case hex digits. */
  sha256: { sqlite: 'TEXT', postgres: 'text', schema: { type: 'string', pattern: '^[0-9a-f]{64}$' } },
} as const

export type FieldKind = keyof typeof FIELD_KINDS

/** The JSON value of each kind. */
export interface KindValue {
  text: string
  time: string
  integer: number
  count: number
  number: number
  decision: 'allow' | 'deny' | 'error'
  roles: string[]
  sha256: string
}

interface BaseField {
  readonly name: string
  readonly kind: FieldKind
  /** Null when unknown or not applicable. */
  readonly nullable?: true
  /**
   * A value the client — or a token's issuer — chose: NUL is replaced (PostgreSQL text cannot hold
   * it) and the value cut at this many characters, so one request writes a record of bounded size
   * (issue 22: a 6 KB `iss`, repeated in every detail, added 184 MB for 35,000 requests).
   */
  readonly client?: number
  /** The `bouncer audit` flag and GET /api/audit query parameter that selects records by it. */
  readonly filter?: string
}

/** Added once logs existed: it must be nullable, as older records have no value for it. */
export type FieldSpec = BaseField & ({ readonly added?: undefined } | { readonly added: true; readonly nullable: true })

/** SPEC order: how records are shown, printed and stored. `detail` is ours (a refusal's "why"). */
export const FIELDS = [
  { name: 'id', kind: 'text' },
  { name: 'time', kind: 'time' },
  { name: 'request_id', kind: 'text' },
  { name: 'trace_id', kind: 'text', nullable: true },
  // Node's parser admits only the methods it knows (11 characters at most): the bound never cuts one.
  { name: 'method', kind: 'text', client: 32 },
  { name: 'path', kind: 'text', client: 2048 },
  // A client's too: an MCP tool call is recorded as the route `mcp:<tool>`, whatever the agent named.
  { name: 'route', kind: 'text', nullable: true, client: 2048, filter: 'route' },
  { name: 'status', kind: 'integer', filter: 'status' },
  { name: 'decision', kind: 'decision', filter: 'decision' },
  { name: 'code', kind: 'text', nullable: true },
  { name: 'detail', kind: 'text', nullable: true, client: 1024 },
  { name: 'statement', kind: 'text', nullable: true },
  { name: 'issuer', kind: 'text', nullable: true },
  { name: 'subject', kind: 'text', nullable: true, client: 256, filter: 'principal' },
  { name: 'client_id', kind: 'text', nullable: true, client: 256 },
  { name: 'roles', kind: 'roles' },
  { name: 'source_ip', kind: 'text' },
  { name: 'user_agent', kind: 'text', nullable: true, client: 512 },
  { name: 'upstream', kind: 'text', nullable: true },
  { name: 'upstream_status', kind: 'integer', nullable: true },
  { name: 'duration_ms', kind: 'number' },
  { name: 'bytes_in', kind: 'count' },
  { name: 'bytes_out', kind: 'count' },
  { name: 'limit', kind: 'text', nullable: true },
  // SPEC "The audit record, added": appended after `limit`.
  { name: 'credential', kind: 'text', nullable: true, added: true },
  { name: 'actor', kind: 'text', nullable: true, client: 256, added: true, filter: 'actor' },
  { name: 'tool', kind: 'text', nullable: true, client: 256, added: true },
  { name: 'args_sha256', kind: 'sha256', nullable: true, added: true },
  { name: 'attempts', kind: 'integer', nullable: true, added: true },
  { name: 'instance', kind: 'text', nullable: true, added: true },
  // A dataset's columns masked for the caller, comma-separated (issue 18).
  { name: 'masked', kind: 'text', nullable: true, added: true },
  // A tool call's arguments, secrets redacted: only with mcp.log_arguments: true (issue 19).
  { name: 'args', kind: 'text', nullable: true, client: 4096, added: true },
  // The console's latency split (issue 20): time from dispatch to the backend's answer headers, ms.
  { name: 'upstream_ms', kind: 'number', nullable: true, added: true },
  { name: 'prev_hash', kind: 'sha256' },
  { name: 'hash', kind: 'sha256' },
] as const satisfies readonly FieldSpec[]

type Field = (typeof FIELDS)[number]

export type AuditField = Field['name']

/** A record as the table defines it: each field's kind, or null where it is nullable. */
export type AuditRecord = { [F in Field as F['name']]: KindValue[F['kind']] | (F extends { nullable: true } ? null : never) }

export type NullableField = Extract<Field, { nullable: true }>['name']

/** The fields a client's value goes into, bounded (`client`). */
export type ClientField = Extract<Field, { client: number }>['name']

/** `principal`, `route`, …: a filter's name, and the value it selects. */
type FilterField = Extract<Field, { filter: string }>
export type FilterName = FilterField['filter']
export type FilterValues = { [F in FilterField as F['filter']]: KindValue[F['kind']] }

/** The table, typed for loops (its literal types are for the record type above). */
export const FIELD_SPECS: readonly FieldSpec[] = FIELDS

export const AUDIT_FIELDS: readonly AuditField[] = FIELDS.map((field) => field.name)

/** The fields added after logs existed (their columns are added in place to an older table). */
export const ADDED_FIELDS: readonly FieldSpec[] = FIELD_SPECS.filter((field) => field.added)

/** A field as an SQL identifier (`limit` is a keyword; quoting a lower-case name changes nothing else). */
export const columnOf = (field: FieldSpec): string => `"${field.name}"`

/** The column's definition in a CREATE TABLE or ADD COLUMN. */
export function columnDefinition(field: FieldSpec, dialect: 'sqlite' | 'postgres'): string {
  return `${columnOf(field)} ${FIELD_KINDS[field.kind][dialect]}${field.nullable ? '' : ' NOT NULL'}`
}
