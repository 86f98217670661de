// A dataset's SQL as binding reads it: placeholders outside literals, comments and casts; one
// statement only; and positional parameters in each dialect, one per name.
import { describe, expect, it } from 'vitest'
import { scanSql } from '../../../src/config/index.ts'
import { pagedStatement, prepareStatement } from '../../../src/datasets/query.ts'

const names = (sql: string) => scanSql(sql).placeholders.map((p) => p.name)

describe('scanSql', () => {
  it('finds placeholders, the caller\'s included, and skips what only looks like one', () => {
    expect(names('SELECT * FROM t WHERE a = :a AND b = :b::int AND c = :principal.sub AND d = :claims.tenant-id AND e = ANY(:roles)')).toEqual(['a', 'b', 'principal.sub', 'claims.tenant-id', 'roles'])
    expect(names("SELECT ':x', \":y\", $$ :z $$, $tag$ :w $tag$, E'\\' :v', now()::date -- :u\n /* :t */ FROM t")).toEqual([])
    expect(names('SELECT a::text, b FROM t')).toEqual([])
  })

  it('counts statements: a trailing semicolon, or one inside a literal or comment, is not a second', () => {
    expect(scanSql('SELECT 1').statements).toBe(1)
    expect(scanSql('SELECT 1;  -- done\n').statements).toBe(1)
    expect(scanSql("SELECT ';' AS semi /* ; */").statements).toBe(1)
    expect(scanSql('SELECT 1; DROP TABLE t').statements).toBe(2)
    expect(scanSql('SELECT 1;;SELECT 2').statements).toBe(2)
    expect(scanSql('  -- nothing\n').statements).toBe(0)
  })

  it('says when a literal never ends', () => {
    expect(scanSql("SELECT 'open").unterminated).toBe('a string literal')
    expect(scanSql('SELECT $$ open').unterminated).toBe('a dollar-quoted string')
    expect(scanSql('SELECT 1 /* open').unterminated).toBe('a /* comment')
  })
})

describe('prepareStatement', () => {
  it('numbers each name once, in PostgreSQL and SQLite, and drops the trailing semicolon', () => {
    const sql = 'SELECT * FROM t WHERE a = :a OR b = :a AND c = :claims.x;'
    expect(prepareStatement(sql, 'postgres')).toEqual({ text: 'SELECT * FROM t WHERE a = $1 OR b = $1 AND c = $2', slots: [{ kind: 'param', name: 'a' }, { kind: 'claim', claim: 'x' }] })
    expect(prepareStatement(sql, 'sqlite').text).toBe('SELECT * FROM t WHERE a = ?1 OR b = ?1 AND c = ?2')
  })

  it('wraps for keyset paging with the key\'s values bound after the statement\'s', () => {
    const prepared = prepareStatement('SELECT id, "Name" FROM t WHERE a = :a -- the end', 'postgres')
    const paged = pagedStatement(prepared, ['x'], { key: ['id', 'Na"me'], after: [10, 'z'], fetch: 101 }, 'postgres')
    const page = 'SELECT * FROM (\nSELECT id, "Name" FROM t WHERE a = $1 -- the end\n) AS bouncer_page WHERE ("id", "Na""me") > ($2, $3) ORDER BY "id", "Na""me" LIMIT 101'
    // PostgreSQL sorts NULL last: a later page also asks for one row whose key holds a NULL the
    // comparison skips (an index on the key answers each term by a probe).
    const nulls = 'SELECT * FROM (\nSELECT id, "Name" FROM t WHERE a = $1 -- the end\n) AS bouncer_nulls WHERE ("id" IS NULL) OR ("id" = $2 AND "Na""me" IS NULL) ORDER BY "id", "Na""me" LIMIT 1'
    expect(paged.text).toBe(`SELECT * FROM ((${page})\nUNION ALL (${nulls})) AS bouncer_paged ORDER BY "id", "Na""me" LIMIT 101`)
    expect(paged.values).toEqual(['x', 10, 'z'])
    const lite = pagedStatement(prepareStatement('SELECT id FROM t WHERE a = :a', 'sqlite'), ['x'], { key: ['id'], after: [10], fetch: 11 }, 'sqlite')
    expect(lite).toEqual({ text: 'SELECT * FROM (\nSELECT id FROM t WHERE a = ?1\n) AS bouncer_page WHERE ("id") > (?2) ORDER BY "id" LIMIT 11', values: ['x', 10] })
    const first = pagedStatement(prepared, ['x'], { key: ['id'], after: null, fetch: 11 }, 'postgres')
    expect(first).toEqual({ text: 'SELECT * FROM (\nSELECT id, "Name" FROM t WHERE a = $1 -- the end\n) AS bouncer_page ORDER BY "id" LIMIT 11', values: ['x'] })
  })
})
