// `GET <path>/_schema`: a dataset's columns as JSON Schema (draft 2020-12), for a BI connector to
// describe its fields without running a query. It describes one row as the JSON format sends it;
// `x-bouncer-kind` keeps the database's kind (Arrow's types follow it), and a masked column says so.
import type { AppliedMask } from './masks.ts'
import type { Column, ColumnKind } from './source.ts'

interface SchemaSource {
  readonly id: string
  readonly path: string
  readonly config: { readonly params: Readonly<Record<string, { type: string; list: boolean; required: boolean }>>; readonly page_size?: number | undefined }
}

const JSON_TYPES: Record<ColumnKind, Record<string, unknown>> = {
  int: { type: ['integer', 'null'] },
  bigint: { type: ['integer', 'string', 'null'] },
  number: { type: ['number', 'null'] },
  decimal: { type: ['number', 'null'] },
  bool: { type: ['boolean', 'null'] },
  date: { type: ['string', 'null'], format: 'date' },
  timestamp: { type: ['string', 'null'], format: 'date-time' },
  timestamptz: { type: ['string', 'null'], format: 'date-time' },
  json: {},
  string: { type: ['string', 'null'] },
  bytes: { type: ['string', 'null'], contentEncoding: 'hex' },
}

export function columnsSchema(dataset: SchemaSource, columns: readonly Column[], masks: readonly AppliedMask[]): Record<string, unknown> {
  const properties: Record<string, unknown> = {}
  columns.forEach((column, index) => {
    const mask = masks.find((m) => m.index === index)
    properties[column.name] = { ...JSON_TYPES[column.kind], 'x-bouncer-kind': column.kind, ...(mask ? { 'x-bouncer-mask': mask.kind } : {}) }
  })
  return {
    $schema: 'https://json-schema.org/draft/2020-12/schema',
    title: dataset.id,
    type: 'object',
    properties,
    required: columns.map((column) => column.name),
    'x-bouncer-columns': columns.map((column) => column.name),
    'x-bouncer-parameters': Object.fromEntries(Object.entries(dataset.config.params).map(([name, p]) => [name, { type: p.type, list: p.list, required: p.required }])),
    'x-bouncer-paging': dataset.config.page_size === undefined ? null : { page_size: dataset.config.page_size },
  }
}
