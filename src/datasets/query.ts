// A dataset's statement made ready to run: each `:name` replaced by a positional parameter ($1 in
// PostgreSQL, ?1 in SQLite; one name is one parameter however often it appears), and the values
// bound in that order: the route's parameters, and the caller's identity (`:principal.sub`,
// `:claims.NAME`, `:roles`). Nothing from the request is ever written into the SQL text.
// Paging wraps the statement for keyset pagination: `WHERE (key) > (last key) ORDER BY key LIMIT n`.
import { identityPlaceholder, scanSql } from '../config/index.ts'
import type { Identity } from '../request/index.ts'
import type { KeyValue } from './cursor.ts'
import type { ParamValue } from './params.ts'

type Slot = { kind: 'param'; name: string } | { kind: 'sub' } | { kind: 'roles' } | { kind: 'claim'; claim: string }

export interface PreparedStatement {
  /** The statement with positional parameters, without its trailing `;`. */
  readonly text: string
  readonly slots: readonly Slot[]
}

export type Dialect = 'postgres' | 'sqlite'

export function prepareStatement(sql: string, dialect: Dialect): PreparedStatement {
  const scanned = scanSql(sql)
  const indexes = new Map<string, number>()
  const slots: Slot[] = []
  let text = ''
  let at = 0
  for (const placeholder of scanned.placeholders) {
    if (placeholder.start >= scanned.statementEnd) break
    let index = indexes.get(placeholder.name)
    if (index === undefined) {
      index = slots.length + 1
      indexes.set(placeholder.name, index)
      const identity = identityPlaceholder(placeholder.name)
      slots.push(identity === null ? { kind: 'param', name: placeholder.name } : identity)
    }
    text += sql.slice(at, placeholder.start) + positional(dialect, index)
    at = placeholder.end
  }
  text += sql.slice(at, scanned.statementEnd)
  return { text, slots }
}

function positional(dialect: Dialect, index: number): string {
  return dialect === 'postgres' ? `$${index}` : `?${index}`
}

/** The values in the statement's order. SQLite has no arrays: a list is bound as JSON text (`json_each(:ids)`). */
export function bindValues(statement: PreparedStatement, params: ReadonlyMap<string, ParamValue>, identity: Identity | null, roles: readonly string[], dialect: Dialect): unknown[] {
  return statement.slots.map((slot) => {
    switch (slot.kind) {
      case 'param':
        return bindable(params.get(slot.name) ?? null, dialect)
      case 'sub':
        return identity?.sub ?? null
      case 'roles':
        return bindable([...roles], dialect)
      case 'claim':
        return claimValue(identity?.claims[slot.claim], dialect)
    }
  })
}

/**
 * What the statement binds from the caller (`:principal.sub`, `:claims.NAME`, `:roles`), in its
 * order: part of a cursor's scope, as the parameters are.
 */
export function callerValues(statement: PreparedStatement, identity: Identity | null, roles: readonly string[], dialect: Dialect): unknown[] {
  const values = bindValues(statement, new Map(), identity, roles, dialect)
  return values.filter((_, i) => statement.slots[i]?.kind !== 'param')
}

function bindable(value: ParamValue, dialect: Dialect): unknown {
  if (Array.isArray(value)) return dialect === 'postgres' ? value : JSON.stringify(value)
  if (dialect === 'sqlite' && typeof value === 'boolean') return value ? 1 : 0
  return value
}

function claimValue(value: unknown, dialect: Dialect): unknown {
  if (value === undefined || value === null) return null
  if (typeof value === 'string' || typeof value === 'number') return value
  if (typeof value === 'boolean') return dialect === 'sqlite' ? (value ? 1 : 0) : value
  if (Array.isArray(value) && value.every((item) => typeof item === 'string' || typeof item === 'number')) return dialect === 'postgres' ? value.map(String) : JSON.stringify(value)
  return JSON.stringify(value)
}

export interface Paging {
  key: readonly string[]
  /** The last key sent (from the cursor); null on the first page. */
  after: readonly KeyValue[] | null
  /** Rows to fetch: the page and one more, to know whether a next page exists. */
  fetch: number
}

/**
 * The statement wrapped for keyset paging, and the values with the key's appended.
 *
 * PostgreSQL sorts NULL last, and `(key) > (last)` is unknown, so false, for a row whose key holds a
 * NULL before it differs from the last key: after the first page such rows were past every page and
 * left out without a word. There a later page also asks for one such row, exactly those the
 * comparison skips (`k1 IS NULL OR (k1 = c1 AND k2 IS NULL) OR …`, each term an index probe where
 * the key is indexed, one `LIMIT 1` branch): it sorts after the page's rows, so it is read, and
 * refused (backend.ts), only when the page reaches it. The result's nullability cannot be known from
 * the catalog (an outer join makes a NOT NULL column nullable), so every later page asks. SQLite
 * sorts NULL first: the first page reaches them.
 */
export function pagedStatement(statement: PreparedStatement, values: unknown[], paging: Paging, dialect: Dialect): { text: string; values: unknown[] } {
  const keys = paging.key.map(quoteIdentifier)
  const columns = keys.join(', ')
  const fetch = Math.floor(paging.fetch)
  // The statement on lines of its own: a trailing `-- comment` in it cannot swallow the wrapper.
  const page = (alias: string, where: string | null, limit: number) => `SELECT * FROM (\n${statement.text}\n) AS ${alias}${where === null ? '' : ` WHERE ${where}`} ORDER BY ${columns} LIMIT ${limit}`
  if (paging.after === null) return { text: page('bouncer_page', null, fetch), values }
  const all = [...values]
  const params = paging.after.map((value) => {
    all.push(value)
    return positional(dialect, all.length)
  })
  const after = `(${columns}) > (${params.join(', ')})`
  if (dialect === 'sqlite') return { text: page('bouncer_page', after, fetch), values: all }
  // Row i: equal to the cursor before column i, NULL at it.
  const nulls = keys.map((key, i) => `(${[...keys.slice(0, i).map((earlier, j) => `${earlier} = ${params[j] as string}`), `${key} IS NULL`].join(' AND ')})`).join(' OR ')
  return {
    text: `SELECT * FROM ((${page('bouncer_page', after, fetch)})\nUNION ALL (${page('bouncer_nulls', nulls, 1)})) AS bouncer_paged ORDER BY ${columns} LIMIT ${fetch}`,
    values: all,
  }
}

/** A column name from the config (never from a request) as an SQL identifier. */
export function quoteIdentifier(name: string): string {
  return `"${name.replaceAll('"', '""')}"`
}
