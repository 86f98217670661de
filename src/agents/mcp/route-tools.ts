// A route as an MCP tool: its input schema (JSON Schema 2020-12) from the route's path parameters
// and the query parameters the tool declares (a wildcard route takes `path`; a method with a body
// takes `body`), its hints from the method, and a call turned back into the HTTP request the route
// takes. A dataset's parameters are its tool's too (those not in the path, typed as it reads them),
// with `cursor` when it pages: whatever can describe its parameters and method becomes a tool the same way.
import { isUtf8 } from 'node:buffer'
import type { ContentBlock } from '@modelcontextprotocol/server'
import type { DatasetConfig, DatasetParamConfig, McpToolConfig, RoutePattern } from '../../config/index.ts'

export const JSON_SCHEMA_2020_12 = 'https://json-schema.org/draft/2020-12/schema'

export interface ToolParameter {
  readonly name: string
  readonly type: 'string' | 'integer' | 'number' | 'boolean'
  readonly description?: string
  readonly required: boolean
  /** The values allowed (a dataset's enum). */
  readonly enum?: readonly string[]
}

/** What a route-like target tells the tool builder (HTTP routes, functions and datasets). */
export interface RouteToolSource {
  readonly routeId: string
  readonly pattern: RoutePattern
  /** The method the tool sends. */
  readonly method: string
  /** Extra typed parameters sent in the query string (a dataset's parameters, a tool's `query`). */
  readonly query: readonly ToolParameter[]
  readonly description: string
}

export interface ToolDefinition {
  name: string
  title?: string
  description: string
  inputSchema: { type: 'object'; [key: string]: unknown }
  annotations: { readOnlyHint: boolean; idempotentHint: boolean; destructiveHint?: boolean; openWorldHint?: boolean }
}

const READ_ONLY = new Set(['GET', 'HEAD', 'OPTIONS'])
const IDEMPOTENT = new Set(['GET', 'HEAD', 'OPTIONS', 'PUT', 'DELETE'])
const WITH_BODY = new Set(['POST', 'PUT', 'PATCH'])
/** The wildcard's argument: the rest of the path. */
const REST = 'path'

/** `dataset`: the route's, whose parameters the tool takes besides those it declares in `query` (which win). */
export function routeToolSource(routeId: string, routeMethods: readonly string[], pattern: RoutePattern, tool: McpToolConfig, dataset: DatasetConfig | null = null): RouteToolSource {
  const first = routeMethods[0] ?? '*'
  const method = tool.method !== undefined && tool.method !== '*' ? tool.method : first === '*' ? 'GET' : first
  const declared: ToolParameter[] = Object.entries(tool.query).map(([name, p]) => ({ name, type: p.type, description: p.description, required: p.required }))
  const fromDataset = dataset ? datasetParameters(dataset, pattern).filter((p) => !(p.name in tool.query)) : []
  return { routeId, pattern, method, query: [...declared, ...fromDataset], description: tool.description ?? `${method} ${pattern.text} (route ${routeId})` }
}

const DATASET_TYPES: Record<DatasetParamConfig['type'], ToolParameter['type']> = { string: 'string', enum: 'string', date: 'string', timestamp: 'string', int: 'integer', number: 'number', bool: 'boolean' }
const DATASET_FORMS: Partial<Record<DatasetParamConfig['type'], string>> = { date: 'a date: YYYY-MM-DD, today, or relative like -30d', timestamp: 'a timestamp: RFC 3339, or relative like -1h' }

/**
 * The query parameters a dataset reads (SPEC "Datasets"): without them its tool's schema had no
 * properties and refused every argument, so a dataset with a required parameter could not be called.
 */
function datasetParameters(dataset: DatasetConfig, pattern: RoutePattern): ToolParameter[] {
  const params = Object.entries(dataset.params).filter(([name]) => !pattern.params.includes(name)).map(([name, p]): ToolParameter => {
    const values = p.values ?? p.enum
    const form = DATASET_FORMS[p.type]
    // Several values travel as one comma-separated string (?id=1,2), which the dataset splits.
    if (p.list) return { name, type: 'string', required: p.required, description: `one or more values, comma-separated${values ? `, each one of ${values.join(', ')}` : form ? `, each ${form}` : ''}` }
    return { name, type: DATASET_TYPES[p.type], required: p.required, ...(form ? { description: form } : {}), ...(values ? { enum: values } : {}) }
  })
  if (dataset.page_size !== undefined) params.push({ name: 'cursor', type: 'string', required: false, description: 'the next page: `next` of the previous answer, with the same other arguments' })
  return params
}

export function routeToolDefinition(name: string, source: RouteToolSource): ToolDefinition {
  const properties: Record<string, unknown> = {}
  const required: string[] = []
  for (const param of source.pattern.params) {
    properties[param] = { type: 'string', minLength: 1, description: `path parameter :${param}` }
    required.push(param)
  }
  if (source.pattern.wildcard) {
    properties[REST] = { type: 'string', description: 'the rest of the path, after the route\'s prefix' }
    required.push(REST)
  }
  for (const param of source.query) {
    properties[param.name] = { type: param.type, ...(param.enum ? { enum: param.enum } : {}), ...(param.description ? { description: param.description } : {}) }
    if (param.required) required.push(param.name)
  }
  if (WITH_BODY.has(source.method)) properties.body = { description: 'the request body, sent as JSON' }
  return {
    name,
    description: source.description,
    inputSchema: { $schema: JSON_SCHEMA_2020_12, type: 'object', properties, required, additionalProperties: false },
    annotations: {
      readOnlyHint: READ_ONLY.has(source.method),
      idempotentHint: IDEMPOTENT.has(source.method),
      destructiveHint: source.method === 'DELETE',
      openWorldHint: false,
    },
  }
}

export interface RouteRequest {
  method: string
  target: string
  body: Buffer | null
  contentType: string | null
}

/** The HTTP request a call stands for; a string says why the arguments do not fit the schema. */
export function routeRequestOf(source: RouteToolSource, args: Readonly<Record<string, unknown>>): RouteRequest | string {
  const known = new Set([...source.pattern.params, ...source.query.map((p) => p.name), ...(source.pattern.wildcard ? [REST] : []), ...(WITH_BODY.has(source.method) ? ['body'] : [])])
  for (const key of Object.keys(args)) if (!known.has(key)) return `unknown argument "${key}"`
  const segments: string[] = []
  for (const segment of source.pattern.segments) {
    if (segment.kind === 'literal') segments.push(segment.raw)
    else if (segment.kind === 'param') {
      const value = args[segment.name]
      if (typeof value !== 'string' || value === '') return `"${segment.name}" must be a non-empty string`
      if (!value.isWellFormed()) return notUnicode(segment.name)
      segments.push(encodeURIComponent(value))
    } else {
      const rest = args[REST]
      if (typeof rest !== 'string') return `"${REST}" must be a string`
      if (!rest.isWellFormed()) return notUnicode(REST)
      segments.push(...rest.split('/').filter((part) => part !== '').map(encodeURIComponent))
    }
  }
  const query = new URLSearchParams()
  for (const param of source.query) {
    const value = args[param.name]
    if (value === undefined || value === null) {
      if (param.required) return `"${param.name}" is required`
      continue
    }
    if (!fits(param.type, value)) return `"${param.name}" must be ${param.type === 'integer' ? 'an integer' : `a ${param.type}`}`
    if (typeof value === 'string' && !value.isWellFormed()) return notUnicode(param.name)
    query.append(param.name, String(value))
  }
  const search = query.toString()
  const target = `/${segments.join('/')}${search === '' ? '' : `?${search}`}`
  const body = args.body === undefined ? null : Buffer.from(JSON.stringify(args.body))
  return { method: source.method, target, body, contentType: body === null ? null : 'application/json' }
}

/**
 * A lone surrogate has no UTF-8 form: encodeURIComponent throws on it (an internal error, -32603,
 * before this check) and URLSearchParams sends U+FFFD in its place, another value than the caller's.
 */
function notUnicode(name: string): string {
  return `"${name}" is not well-formed Unicode (a lone surrogate)`
}

function fits(type: ToolParameter['type'], value: unknown): boolean {
  switch (type) {
    case 'string': return typeof value === 'string'
    case 'integer': return typeof value === 'number' && Number.isInteger(value)
    case 'number': return typeof value === 'number' && Number.isFinite(value)
    case 'boolean': return typeof value === 'boolean'
  }
}

/** Media types that are text whatever their top-level type says (JSON, XML, YAML, JavaScript, forms, CSV…). */
const TEXT_LIKE = /^text\/|[/+](?:json|ndjson|x-ndjson|jsonl|xml|yaml|x-yaml|javascript|ecmascript|x-www-form-urlencoded|csv|graphql|sql)$/

/**
 * A route's answer as a tool result's content (MCP "Tool Result"): text as text, in its charset;
 * an image or audio as image or audio content; any other bytes as an embedded resource with a
 * base64 `blob` at `uri` (the route's URL). Every answer was decoded as UTF-8 text: a PNG reached
 * the agent as a page of U+FFFD, its bytes lost (found by a probe). An answer without a type is
 * text when it is UTF-8, else bytes.
 */
export function routeAnswerContent(body: Buffer, contentType: string, uri: string): ContentBlock {
  const [essence = '', ...parameters] = contentType.split(';')
  const mimeType = essence.trim().toLowerCase()
  if (mimeType === '' ? isUtf8(body) : TEXT_LIKE.test(mimeType)) return { type: 'text', text: decodeText(body, charsetOf(parameters)) }
  const data = body.toString('base64')
  if (mimeType.startsWith('image/')) return { type: 'image', data, mimeType }
  if (mimeType.startsWith('audio/')) return { type: 'audio', data, mimeType }
  return { type: 'resource', resource: { uri, mimeType: mimeType === '' ? 'application/octet-stream' : mimeType, blob: data } }
}

function charsetOf(parameters: readonly string[]): string {
  for (const parameter of parameters) {
    const [name, value] = parameter.split('=')
    if (name?.trim().toLowerCase() === 'charset' && value !== undefined) return value.trim().replace(/^"|"$/g, '')
  }
  return 'utf-8'
}

/** In the answer's charset, when the platform knows it (latin1, utf-16…); UTF-8 otherwise. */
function decodeText(body: Buffer, charset: string): string {
  try {
    return new TextDecoder(charset).decode(body)
  } catch {
    return body.toString('utf8')
  }
}
