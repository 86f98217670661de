// A dataset's SQL, read as far as binding needs: where its `:name` placeholders are, and whether it
// is one statement. Literals, quoted identifiers, comments and PostgreSQL's dollar quotes are
// skipped, so `':x'`, `"a;b"`, `-- :y` and `$$;$$` are neither placeholders nor statement ends, and
// `::int` is a cast. The placeholders become positional parameters ($1, ?1): nothing the caller
// sends is ever written into the SQL text.

export interface Placeholder {
  /** `region`, `principal.sub`, `claims.tenant`, `roles`. */
  name: string
  start: number
  end: number
}

export interface ScannedSql {
  placeholders: Placeholder[]
  /** Non-empty statements: a dataset must have exactly one (a trailing `;` is allowed). */
  statements: number
  /** Set when a literal, identifier or comment never closes. */
  unterminated: string | null
  /** Where the first statement ends: its `;`, or the end of the text. */
  statementEnd: number
}

const IDENT_START = /[A-Za-z_]/
const IDENT = /[A-Za-z0-9_]/
const CLAIM = /[A-Za-z0-9_-]/

export function scanSql(sql: string): ScannedSql {
  const placeholders: Placeholder[] = []
  let statements = 0
  let content = false // the current statement has something besides whitespace and comments
  let unterminated: string | null = null
  let statementEnd = -1
  let i = 0
  const n = sql.length
  while (i < n) {
    const c = sql[i] as string
    const next = sql[i + 1]
    if (c === '-' && next === '-') {
      const end = sql.indexOf('\n', i)
      i = end === -1 ? n : end + 1
      continue
    }
    if (c === '/' && next === '*') {
      const end = sql.indexOf('*/', i + 2)
      if (end === -1) {
        unterminated = 'a /* comment'
        break
      }
      i = end + 2
      continue
    }
    if (c === "'" || c === '"' || c === '`') {
      const end = closingQuote(sql, i, c)
      if (end === -1) {
        unterminated = c === "'" ? 'a string literal' : 'a quoted identifier'
        break
      }
      content = true
      i = end + 1
      continue
    }
    if (c === '$') {
      const tag = /^\$([A-Za-z_][A-Za-z0-9_]*)?\$/.exec(sql.slice(i, i + 66))
      if (tag && !(i > 0 && IDENT.test(sql[i - 1] as string))) {
        const end = sql.indexOf(tag[0], i + tag[0].length)
        if (end === -1) {
          unterminated = 'a dollar-quoted string'
          break
        }
        content = true
        i = end + tag[0].length
        continue
      }
    }
    if (c === ';') {
      if (content && statementEnd === -1) statementEnd = i
      if (content) statements++
      content = false
      i++
      continue
    }
    if (c === ':' && next === ':') {
      content = true
      i += 2
      continue
    }
    if (c === ':' && next !== undefined && IDENT_START.test(next) && !(i > 0 && (sql[i - 1] === ':' || IDENT.test(sql[i - 1] as string)))) {
      let j = i + 1
      while (j < n && IDENT.test(sql[j] as string)) j++
      let name = sql.slice(i + 1, j)
      if ((name === 'principal' || name === 'claims') && sql[j] === '.') {
        let k = j + 1
        const allowed = name === 'claims' ? CLAIM : IDENT
        while (k < n && allowed.test(sql[k] as string)) k++
        if (k > j + 1) {
          name = sql.slice(i + 1, k)
          j = k
        }
      }
      placeholders.push({ name, start: i, end: j })
      content = true
      i = j
      continue
    }
    if (!/\s/.test(c)) content = true
    i++
  }
  if (content) statements++
  return { placeholders, statements, unterminated, statementEnd: statementEnd === -1 ? n : statementEnd }
}

/** The index of the quote that closes the one at `start`; a doubled quote is part of the text. */
function closingQuote(sql: string, start: number, quote: string): number {
  let i = start + 1
  for (;;) {
    const end = sql.indexOf(quote, i)
    if (end === -1) return -1
    if (sql[end + 1] === quote) {
      i = end + 2
      continue
    }
    // PostgreSQL E'…' strings escape with a backslash too.
    if (quote === "'" && start > 0 && /[eE]/.test(sql[start - 1] as string) && countBackslashes(sql, end) % 2 === 1) {
      i = end + 1
      continue
    }
    return end
  }
}

function countBackslashes(sql: string, before: number): number {
  let count = 0
  for (let i = before - 1; i >= 0 && sql[i] === '\\'; i--) count++
  return count
}

/** What an identity placeholder names, or null for a parameter of the route. */
export function identityPlaceholder(name: string): { kind: 'sub' } | { kind: 'roles' } | { kind: 'claim'; claim: string } | null {
  if (name === 'principal.sub') return { kind: 'sub' }
  if (name === 'roles') return { kind: 'roles' }
  if (name.startsWith('claims.')) return { kind: 'claim', claim: name.slice('claims.'.length) }
  return null
}
