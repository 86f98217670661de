// Found by an adversarial probe (helper): dataset parameters at the edges of their types. Every value the rules refuse must be
// 400 invalid_parameter naming the parameter (never a 500, never silently another value).
import { execFileSync } from 'node:child_process'
import { mkdtempSync, rmSync } from 'node:fs'
import { DatabaseSync } from 'node:sqlite'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { request } from 'undici'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { startTestGateway, type TestGateway } from '../helpers/gateway.ts'
import { SHARED_POSTGRES } from '../helpers/postgres.ts'

let gw: TestGateway
let dir: string

/**
 * The German locale PostgreSQL needs for lc_messages, made when missing (as .ci/run does): as a
 * directory, which a running server finds (a locale-archive it would read only once restarted).
 */
function ensureGermanLocale(): void {
  if (execFileSync('locale', ['-a'], { encoding: 'utf8' }).split('\n').includes('de_DE.utf8')) return
  try {
    execFileSync('localedef', ['--no-archive', '-i', 'de_DE', '-f', 'UTF-8', 'de_DE.UTF-8'], { stdio: 'pipe' })
  } catch (err) {
    throw new Error(`this test needs the de_DE.UTF-8 locale: localedef --no-archive -i de_DE -f UTF-8 de_DE.UTF-8 (as root) failed: ${(err as Error).message}`, { cause: err })
  }
}

beforeAll(async () => {
  ensureGermanLocale()
  dir = mkdtempSync(join(tmpdir(), 'bouncer-param-edges-'))
  new DatabaseSync(join(dir, 'lite.db')).close()
  gw = await startTestGateway({
    datasources: [
      { name: 'warehouse', type: 'postgres', url: SHARED_POSTGRES, max_connections: 2, key: 'a-test-key-of-32-characters-long' },
      { name: 'shop', type: 'sqlite', path: join(dir, 'lite.db'), key: 'a-test-key-of-32-characters-long' },
      // A server that speaks German (de_DE.UTF-8: ensureGermanLocale).
      { name: 'german', type: 'postgres', url: `${SHARED_POSTGRES}?options=-c%20lc_messages%3Dde_DE.UTF-8`, max_connections: 1, key: 'a-test-key-of-32-characters-long' },
    ],
    routes: [
      {
        id: 'ds.echo',
        methods: ['GET'],
        path: '/ds/echo',
        public: true,
        dataset: { source: 'warehouse', sql: 'SELECT :ts::timestamptz AS ts, :day::date AS day', params: { ts: { type: 'timestamp' }, day: { type: 'date' } } },
      },
      {
        id: 'ds.typed',
        methods: ['GET'],
        path: '/ds/typed',
        public: true,
        dataset: {
          source: 'warehouse',
          sql: "SELECT :n::int AS n, :u::uuid AS u, :ids::int[] AS ids, CASE WHEN :bad THEN 1 / (SELECT 0) END AS bad",
          params: { n: { type: 'int' }, u: { type: 'string' }, ids: { type: 'int', list: true }, bad: { type: 'bool' } },
        },
      },
      {
        id: 'german.typed',
        methods: ['GET'],
        path: '/german/typed',
        public: true,
        dataset: { source: 'german', sql: 'SELECT :n::int AS n, :u::uuid AS u, 1 / :d AS q', params: { n: { type: 'int' }, u: { type: 'string' }, d: { type: 'int' } } },
      },
      {
        id: 'ds.pattern',
        methods: ['GET'],
        path: '/ds/pattern',
        public: true,
        dataset: { source: 'warehouse', sql: "SELECT 'abc' ~ :re AS matches", params: { re: { type: 'string' } } },
      },
      {
        id: 'ds.like',
        methods: ['GET'],
        path: '/ds/like',
        public: true,
        dataset: {
          source: 'warehouse',
          sql: "SELECT 'a_c' LIKE :p ESCAPE :esc AS matches FROM generate_series(1, 3) LIMIT :n",
          params: { p: { type: 'string' }, esc: { type: 'string' }, n: { type: 'int' } },
        },
      },
      {
        id: 'lite.like',
        methods: ['GET'],
        path: '/lite/like',
        public: true,
        dataset: { source: 'shop', sql: "SELECT 'a_c' LIKE :p ESCAPE :esc AS matches", params: { p: { type: 'string' }, esc: { type: 'string' } } },
      },
      {
        id: 'lite.own-pattern',
        methods: ['GET'],
        path: '/lite/own-pattern',
        public: true,
        dataset: { source: 'shop', sql: "SELECT 'a' LIKE 'a' ESCAPE 'xy' AS matches" },
      },
      {
        id: 'ds.own-pattern',
        methods: ['GET'],
        path: '/ds/own-pattern',
        public: true,
        dataset: { source: 'warehouse', sql: "SELECT 'abc' ~ '(' AS matches" },
      },
    ],
  })
})

afterAll(async () => {
  await gw?.close()
  if (dir) rmSync(dir, { recursive: true, force: true })
})

async function get(query: string, path = '/ds/echo'): Promise<{ status: number; body: Record<string, unknown> }> {
  const res = await request(`${gw.url}${path}?${query}`)
  return { status: res.statusCode, body: (await res.body.json()) as Record<string, unknown> }
}

describe('dataset parameters out of range', () => {
  it('a relative timestamp beyond the representable range is 400 invalid_parameter, not 502 datasource_error', async () => {
    const res = await get('ts=-999999w')
    expect(res.body.code).toBe('invalid_parameter')
    expect(res.status).toBe(400)
    expect(String(res.body.detail)).toContain('"ts"')
  })

  it('a relative date beyond the representable range is 400 invalid_parameter, not 502 datasource_error', async () => {
    const res = await get('day=%2B999999w')
    expect(res.body.code).toBe('invalid_parameter')
    expect(res.status).toBe(400)
    expect(String(res.body.detail)).toContain('"day"')
  })

  it('a timestamp on a day that does not exist (February 30) is refused like the same date is', async () => {
    const asDate = await get('day=2026-02-30')
    expect(asDate.status).toBe(400)
    const asTimestamp = await get('ts=2026-02-30T00:00:00Z')
    expect(asTimestamp.status).toBe(400)
    expect(asTimestamp.body.code).toBe('invalid_parameter')
  })
})

describe('a value the database cannot take as the type of its place in the statement', () => {
  // Found by an adversarial probe: each was 502 datasource_error with an error logged, so any caller
  // could fill the log and the 5xx rate with values the column's type refuses.
  it.each([
    ['an int beyond PostgreSQL\'s integer', 'n=9999999999', 'n', 'type integer'],
    ['a string that is no uuid', 'u=nope', 'u', 'type uuid'],
    ['a list item beyond PostgreSQL\'s integer', 'ids=1,99999999999', 'ids', 'type integer'],
  ])('%s is 400 invalid_parameter naming the parameter, with nothing logged as an error', async (_what, query, name, type) => {
    const logged = gw.logs.length
    const res = await get(query, '/ds/typed')
    expect(res.status).toBe(400)
    expect(res.body.code).toBe('invalid_parameter')
    expect(String(res.body.detail)).toContain(`"${name}"`)
    expect(String(res.body.detail)).toContain(type)
    expect(gw.logs.slice(logged).filter((line) => line.includes('"level":"error"') || line.includes('the statement failed'))).toEqual([])
  })

  it('values that fit are answered', async () => {
    const res = await get('n=7&u=00000000-0000-0000-0000-000000000001&ids=1,2', '/ds/typed')
    expect(res.status).toBe(200)
    expect(res.body.rows).toEqual([{ n: 7, u: '00000000-0000-0000-0000-000000000001', ids: '{1,2}', bad: null }])
  })

  it.each([
    ['n=9999999999&u=00000000-0000-0000-0000-000000000001&d=1', 'n'],
    ['n=1&u=nope&d=1', 'u'],
  ])('on a server whose messages are German, %s is 400 naming "%s" (the context is read in any language)', async (query, name) => {
    const res = await get(query, '/german/typed')
    expect(res).toMatchObject({ status: 400, body: { code: 'invalid_parameter' } })
    expect(String(res.body.detail)).toContain(`"${name}"`)
  })

  it('on that server, values that fit are answered, and a failure that is no bind stays 502', async () => {
    expect(await get('n=7&u=00000000-0000-0000-0000-000000000001&d=7', '/german/typed')).toMatchObject({ status: 200, body: { rows: [{ n: 7, q: 0 }] } })
    const zero = await get('n=7&u=00000000-0000-0000-0000-000000000001&d=0', '/german/typed')
    expect(zero).toMatchObject({ status: 502, body: { code: 'datasource_error' } })
  })

  it('a statement failing on its own values is still 502 datasource_error', async () => {
    const res = await get('bad=true', '/ds/typed')
    expect(res.status).toBe(502)
    expect(res.body.code).toBe('datasource_error')
  })
})

describe('a pattern or a row count the database cannot use', () => {
  // They were 502 datasource_error with an error logged, as the values above were: PostgreSQL
  // raises them while the statement runs, with no parameter's position to name.
  it.each([
    ['a regular expression that does not parse', '/ds/pattern?re=(', '"re"', 'invalid regular expression'],
    ['a LIKE escape of two characters', '/ds/like?p=a%25&esc=xy&n=1', '"p", "esc", "n"', 'invalid escape string'],
    ['a negative LIMIT', '/ds/like?p=a%25&esc=!&n=-1', '"p", "esc", "n"', 'LIMIT must not be negative'],
    ['[sqlite] a LIKE escape of two characters', '/lite/like?p=a%25&esc=xy', '"p", "esc"', 'ESCAPE expression must be a single character'],
  ])('%s is 400 invalid_parameter, with nothing logged as an error', async (_what, path, names, why) => {
    const logged = gw.logs.length
    const [route, query] = path.split('?') as [string, string]
    const res = await get(query, route)
    expect(res.status).toBe(400)
    expect(res.body.code).toBe('invalid_parameter')
    expect(String(res.body.detail)).toContain(names)
    expect(String(res.body.detail)).toContain(why)
    expect(gw.logs.slice(logged).filter((line) => line.includes('"level":"error"') || line.includes('the statement failed'))).toEqual([])
  })

  it('values it can use are answered', async () => {
    expect((await get('re=^a', '/ds/pattern')).body.rows).toEqual([{ matches: true }])
    const like = await get('p=a!_c&esc=!&n=2', '/ds/like')
    expect(like.status).toBe(200)
    expect(like.body.rows).toEqual([{ matches: true }, { matches: true }])
  })

  it.each(['/ds/own-pattern', '/lite/own-pattern'])('a pattern of the statement\'s own, with no caller value, is still 502 datasource_error (%s)', async (path) => {
    const res = await get('', path)
    expect(res.status).toBe(502)
    expect(res.body.code).toBe('datasource_error')
  })
})

describe('a date in the years 0001 to 0099', () => {
  // Found by an adversarial probe: read with Date.UTC, whose years 0–99 are 1900–1999, they were
  // refused as no date, though the rules take years 0001 to 9999.
  it('is taken as that date, as a date and as a timestamp', async () => {
    const res = await get('day=0050-06-01&ts=0001-01-01T00:00:00Z')
    expect(res.status).toBe(200)
    expect(res.body.rows).toEqual([{ ts: '0001-01-01T00:00:00Z', day: '0050-06-01' }])
  })

  it('year 0000 is still refused', async () => {
    const res = await get('day=0000-06-01')
    expect(res.status).toBe(400)
    expect(res.body.code).toBe('invalid_parameter')
  })
})
