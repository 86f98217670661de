// A route as an MCP tool: its input schema (JSON Schema 2020-12) from the route's path parameters
// and the query parameters the tool declares (a wildcard route takes `path`; a method with a body
// takes `body`), its hints from the method, and a call turned back into the HTTP request the route
// takes. Datasets (built in parallel) plug in through `RouteToolSource`: whatever can describe its
// parameters and method becomes a tool the same way.
import type { McpToolConfig, RoutePattern } from '../../config/index.ts'

export const JSON_SCHEMA_2020_12 = 'https://json-schema.org/draft/2020-12/schema'

export interface ToolParameter {
  readonly name: string
  readonly type: 'string' | 'integer' | 'number' | 'boolean'
  readonly description?: string
  readonly required: boolean
}

/** What a route-like target tells the tool builder (HTTP routes and functions now; datasets next). */
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

export function routeToolSource(routeId: string, routeMethods: readonly string[], pattern: RoutePattern, tool: McpToolConfig): RouteToolSource {
  const first = routeMethods[0] ?? '*'
  const method = tool.method !== undefined && tool.method !== '*' ? tool.method : first === '*' ? 'GET' : first
  const query = Object.entries(tool.query).map(([name, p]) => ({ name, type: p.type, description: p.description, required: p.required }))
  return { routeId, pattern, method, query, description: tool.description ?? `${method} ${pattern.text} (route ${routeId})` }
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
    properties[param.name] = { type: param.type, ...(param.description ? { description: param.description } : {}) }
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
