// Checks about datasets (datasources[], and routes whose target is a dataset): one statement only,
// every placeholder declared, parameter settings that fit their type, masks and paging that make
// sense. The loader refuses a `sql` of more than one statement here, before anything runs.
import type { ConfigPath, Finding } from './diagnostics.ts'
import { identityPlaceholder, scanSql } from './dataset-sql.ts'
import type { Config } from './schema.ts'

/** Query-string names a dataset reads itself. */
export const RESERVED_QUERY = new Set(['format', 'cursor'])

export function datasetFindings(config: Config): Finding[] {
  const findings: Finding[] = []
  const error = (path: ConfigPath, message: string) => findings.push({ severity: 'error', path, message })
  const warn = (path: ConfigPath, message: string) => findings.push({ severity: 'warning', path, message })
  const sources = new Map<string, number>()
  config.datasources.forEach((source, i) => {
    if (sources.has(source.name)) error(['datasources', i, 'name'], `duplicate datasource "${source.name}"`)
    sources.set(source.name, i)
  })
  const roles = new Set(config.roles.map((role) => role.name))
  const used = new Set<string>()
  config.routes.forEach((route, i) => {
    const dataset = route.dataset
    if (dataset === undefined) return
    const at = (...rest: Array<string | number>): ConfigPath => ['routes', i, 'dataset', ...rest]
    used.add(dataset.source)
    const sourceIndex = sources.get(dataset.source)
    if (sourceIndex === undefined) error(at('source'), `unknown datasource "${dataset.source}"`)
    for (const method of route.methods) {
      if (method !== 'GET' && method !== 'HEAD') error(['routes', i, 'methods'], `a dataset answers GET (and HEAD): ${method} cannot reach it`)
    }
    if (route.upstream_path !== undefined) error(['routes', i, 'upstream_path'], 'upstream_path rewrites the path sent to an upstream; a dataset has none')
    if (route.websocket) error(['routes', i, 'websocket'], 'a dataset answers requests, it cannot hold a WebSocket')
    const scanned = scanSql(dataset.sql)
    if (scanned.unterminated) error(at('sql'), `${scanned.unterminated} never ends`)
    else if (scanned.statements !== 1) error(at('sql'), scanned.statements === 0 ? 'the sql is empty' : `the sql holds ${scanned.statements} statements: a dataset runs exactly one`)
    const pathParams = new Set((route.path.match(/:[A-Za-z_][A-Za-z0-9_]*/g) ?? []).map((p) => p.slice(1)))
    const referenced = new Set<string>()
    for (const placeholder of scanned.placeholders) {
      const identity = identityPlaceholder(placeholder.name)
      if (identity !== null) {
        if (route.public) error(at('sql'), `:${placeholder.name} binds the caller's identity, but route "${route.id}" is public: it has none`)
        continue
      }
      if (placeholder.name.startsWith('principal')) {
        error(at('sql'), `:${placeholder.name} is not bound: the caller is :principal.sub, :claims.NAME or :roles`)
        continue
      }
      referenced.add(placeholder.name)
      if (!(placeholder.name in dataset.params)) error(at('sql'), `:${placeholder.name} is not a declared parameter (declare it under params)`)
    }
    for (const [name, param] of Object.entries(dataset.params)) {
      const where = at('params', name)
      if (RESERVED_QUERY.has(name)) error(where, `"${name}" is read by the gateway itself (?format=, ?cursor=): name the parameter otherwise`)
      if (!referenced.has(name)) warn(where, `parameter "${name}" is not used in the sql`)
      if (param.type === 'enum' && param.values === undefined && param.enum === undefined) error(where, 'an enum parameter needs its values')
      if ((param.values !== undefined || param.enum !== undefined) && param.type !== 'enum' && param.type !== 'string') error(where, 'values (enum) go with type enum or string')
      if ((param.min !== undefined || param.max !== undefined) && (param.type === 'bool' || param.type === 'enum')) error(where, `min and max do not apply to type ${param.type}`)
      if ((param.type === 'int' || param.type === 'number' || param.type === 'string') && [param.min, param.max].some((v) => v !== undefined && typeof v !== 'number')) {
        error(where, `min and max of a ${param.type} parameter are numbers`)
      }
      if (param.required && param.default !== undefined) warn(where, 'a required parameter never uses its default')
      if (pathParams.has(name) && param.list) error(where, 'a path parameter holds one value, not a list')
    }
    if (dataset.page_size !== undefined && dataset.page_size > dataset.max_rows) warn(at('page_size'), 'page_size is more than max_rows: a page stops at max_rows')
    for (const [column, mask] of Object.entries(dataset.masks)) {
      mask.unless_roles.forEach((role, j) => {
        if (!roles.has(role)) warn(at('masks', column, 'unless_roles', j), `unknown role "${role}"`)
      })
      if (mask.with === 'hash' && sourceIndex !== undefined && config.datasources[sourceIndex]?.key === undefined) {
        warn(at('masks', column), `datasource "${dataset.source}" has no key: hashes change on every start, so they cannot be joined across days (set datasources[].key)`)
      }
      // Rows come in the order of the key's real values: a masked caller learns their order (found by an adversarial probe).
      if (dataset.page_size !== undefined && dataset.key?.some((name) => name.toLowerCase() === column.toLowerCase())) {
        warn(at('masks', column), `the dataset pages by the masked column "${column}": its rows come in the order of the real values, which callers who see it masked can read; page by a column they may see`)
      }
      // A parameter compared with a masked column answers guesses of its values (found by an adversarial probe).
      for (const name of Object.keys(dataset.params)) {
        if (comparedIn(dataset.sql, column, name)) {
          warn(at('params', name), `parameter "${name}" is compared with the masked column "${column}" in the sql: a caller who sees it masked can test guesses of its values by whether rows come back`)
        }
      }
    }
  })
  config.datasources.forEach((source, i) => {
    if (!used.has(source.name)) warn(['datasources', i, 'name'], `datasource "${source.name}" is not used by any dataset`)
  })
  return findings
}

const COMPARISON = String.raw`(?:=|<>|!=|<=|>=|<|>|\bI?LIKE\b|\bIN\b|\bSIMILAR\s+TO\b)`

/** `text` matched literally. Not RegExp.escape: Node 24 has it, Node 22 (package.json engines) does not. */
function literal(text: string): string {
  return text.replace(/[\\^$.*+?()[\]{}|/-]/g, '\\$&')
}

/** Whether the sql compares `column` with `:param` directly (`email = :email`, `:email = t.email`, `email LIKE :q`). */
function comparedIn(sql: string, column: string, param: string): boolean {
  const col = String.raw`\b${literal(column)}\b`
  const placeholder = String.raw`:${literal(param)}\b(?:::\w+)?`
  return new RegExp(String.raw`${col}\s*${COMPARISON}\s*[(\s]*(?:\w+\()?${placeholder}|${placeholder}\)?\s*${COMPARISON}\s*${col}`, 'i').test(sql)
}
