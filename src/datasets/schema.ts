// `GET <path>/_schema`: a dataset's columns as JSON Schema (draft 2020-12), for a BI connector to
// describe its fields without running a query. It describes one row as the JSON format sends it;
// `x-bouncer-kind` keeps the database's kind (Arrow's types follow it), and a masked column says so.
import { jsonKeys } from './formats.ts'
import type { AppliedMask } from './masks.ts'
import type { Column, ColumnKind } from './source.ts'

interface SchemaSource {
  readonly id: string
  readonly path: string
  readonly config: { readonly params: Readonly<Record<string, { type: string; list: boolean; required: boolean }>>; readonly page_size?: number | undefined }
}

// RFC 3339 (`format`) has the years 0000–9999 only: the others come in ISO 8601's expanded form
// (`-000043-03-15` is 44 BC, `+010000-01-01`) and infinity as PostgreSQL spells it (formats.ts), so
// a validator that asserts `format` still accepts every row.
const EXPANDED_DATE = '^-?infinity$|^[+-]\\d{6,}-\\d\\d-\\d\\d$'
const EXPANDED_DATE_TIME = '^-?infinity$|^[+-]\\d{6,}-\\d\\d-\\d\\dT\\d\\d:\\d\\d:\\d\\d(\\.\\d+)?Z$'
/** `timestamp` has no zone and RFC 3339's `date-time` requires one: the gateway invents none. */
const LOCAL_DATE_TIME = '^-?infinity$|^(\\d{4}|[+-]\\d{6,})-\\d\\d-\\d\\dT\\d\\d:\\d\\d:\\d\\d(\\.\\d+)?$'

// Numbers are strings where a JSON number would not be the database's value: int8 beyond 2^53, a
// numeric JavaScript would read back otherwise, NaN and ±Infinity (formats.ts).
const JSON_TYPES: Record<ColumnKind, Record<string, unknown>> = {
  int: { type: ['integer', 'null'] },
  bigint: { type: ['integer', 'string', 'null'] },
  number: { type: ['number', 'string', 'null'] },
  decimal: { type: ['number', 'string', 'null'] },
  bool: { type: ['boolean', 'null'] },
  date: { type: ['string', 'null'], anyOf: [{ format: 'date' }, { pattern: EXPANDED_DATE }] },
  timestamp: { type: ['string', 'null'], pattern: LOCAL_DATE_TIME, description: 'a date and time of day without a time zone (ISO 8601 local time)' },
  timestamptz: { type: ['string', 'null'], anyOf: [{ format: 'date-time' }, { pattern: EXPANDED_DATE_TIME }] },
  json: {},
  string: { type: ['string', 'null'] },
  bytes: { type: ['string', 'null'], contentEncoding: 'hex' },
}

export function columnsSchema(dataset: SchemaSource, columns: readonly Column[], masks: readonly AppliedMask[]): Record<string, unknown> {
  const properties: Record<string, unknown> = {}
  const keys = jsonKeys(columns) // a second `status` is `status_2` in a row, as here
  columns.forEach((column, index) => {
    const mask = masks.find((m) => m.index === index)
    // Defined: a column named __proto__ set the object's prototype and was left out.
    Object.defineProperty(properties, keys[index] as string, { value: { ...JSON_TYPES[column.kind], 'x-bouncer-kind': column.kind, ...(mask ? { 'x-bouncer-mask': mask.kind } : {}) }, enumerable: true, writable: true, configurable: true })
  })
  return {
    $schema: 'https://json-schema.org/draft/2020-12/schema',
    title: dataset.id,
    type: 'object',
    properties,
    required: keys,
    'x-bouncer-columns': columns.map((column) => column.name),
    'x-bouncer-parameters': Object.fromEntries(Object.entries(dataset.config.params).map(([name, p]) => [name, { type: p.type, list: p.list, required: p.required }])),
    'x-bouncer-paging': dataset.config.page_size === undefined ? null : { page_size: dataset.config.page_size },
  }
}
