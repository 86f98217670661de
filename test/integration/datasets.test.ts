// Datasets: a route that answers rows from PostgreSQL or SQLite. Parameters are typed and checked
// before any query (400 invalid_parameter naming the parameter and the rule), bound and never
// spliced (an injection attempt in every position finds nothing), the caller's identity binds too
// (row-level filters), masks follow the caller's roles in every format, paging follows a signed
// cursor to the end, a write is refused by the read-only transaction, a slow statement is cancelled
// (504 query_timeout), and a datasource that is down fails only its own routes.
import { mkdtempSync, rmSync } from 'node:fs'
import { DatabaseSync } from 'node:sqlite'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { tableFromIPC } from 'apache-arrow'
import pg from 'pg'
import { request } from 'undici'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { searchAudit } from '../../src/audit/search.ts'
import { loadConfigText } from '../../src/config/index.ts'
import { startTestGateway, type TestGateway } from '../helpers/gateway.ts'
import { AUDIENCE, startIdentityProvider, type TestIdentityProvider } from '../helpers/identity-provider.ts'
import { SHARED_POSTGRES } from '../helpers/postgres.ts'
import { waitFor } from '../helpers/wait.ts'

const TABLE = `ds_orders_${process.pid}_${Date.now() % 1_000_000}`
const REGIONS = ['eu', 'us']
const now = Date.now()

/** 40 orders: two tenants, two regions, emails at two domains, one order a day back from today. */
const ORDERS = Array.from({ length: 40 }, (_, i) => ({
  id: i + 1,
  tenant: i % 4 === 3 ? 'globex' : 'acme',
  region: REGIONS[i % 2] as string,
  customer_email: `customer${i + 1}@${i % 3 === 0 ? 'example.com' : 'shop.test'}`,
  total: (i + 1) * 10.5,
  qty: i + 1,
  paid: i % 5 !== 0,
  created_at: new Date(now - i * 86_400_000).toISOString(),
}))

let idp: TestIdentityProvider
let gw: TestGateway
let db: pg.Client
let dir: string
let analyst: string
let finance: string

const ORDERS_SQL = `SELECT id, region, customer_email, total, qty, paid, created_at FROM ${TABLE}
  WHERE tenant = :claims.tenant AND region = :region AND created_at >= :since
    AND (:min_total::numeric IS NULL OR total >= :min_total) AND (cardinality(:ids::int[]) = 0 OR id = ANY(:ids))
    AND (:paid::boolean IS NULL OR paid = :paid) AND (:before::timestamptz IS NULL OR created_at < :before)
    AND (:email::text IS NULL OR customer_email = :email) -- a comment with :not_a_param and a ; in it
  ORDER BY id`

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'bouncer-datasets-'))
  db = new pg.Client({ connectionString: SHARED_POSTGRES })
  await db.connect()
  await db.query(`CREATE TABLE ${TABLE} (id int PRIMARY KEY, tenant text, region text, customer_email text, total numeric(10,2), qty int, paid boolean, created_at timestamptz)`)
  for (const o of ORDERS) {
    await db.query(`INSERT INTO ${TABLE} VALUES ($1,$2,$3,$4,$5,$6,$7,$8)`, [o.id, o.tenant, o.region, o.customer_email, o.total, o.qty, o.paid, o.created_at])
  }
  const lite = new DatabaseSync(join(dir, 'shop.db'))
  lite.exec('CREATE TABLE orders (id INTEGER PRIMARY KEY, tenant TEXT, region TEXT, customer_email TEXT, total REAL, paid BOOLEAN, created_at TIMESTAMP)')
  const insert = lite.prepare('INSERT INTO orders VALUES (?, ?, ?, ?, ?, ?, ?)')
  for (const o of ORDERS) insert.run(o.id, o.tenant, o.region, o.customer_email, o.total, o.paid ? 1 : 0, o.created_at)
  lite.close()

  idp = await startIdentityProvider()
  analyst = await idp.mint({ sub: 'ana', groups: ['analyst'], tenant: 'acme' })
  finance = await idp.mint({ sub: 'fin', groups: ['analyst', 'finance'], tenant: 'acme' })
  gw = await startTestGateway({
    issuers: [{ name: 'corp', issuer: idp.issuer, audiences: [AUDIENCE] }],
    roles: [
      { name: 'analyst', assumed_by: [{ issuer: 'corp', claims: { groups: 'analyst' } }], policies: ['read'] },
      { name: 'finance', assumed_by: [{ issuer: 'corp', claims: { groups: 'finance' } }], policies: ['read'] },
    ],
    policies: [{ name: 'read', statements: [{ sid: 'Read', effect: 'allow', actions: ['GET', 'HEAD'], routes: ['*'] }] }],
    datasources: [
      { name: 'warehouse', type: 'postgres', url: SHARED_POSTGRES, max_connections: 4, key: 'a-test-key-of-32-characters-long' },
      { name: 'shop', type: 'sqlite', path: join(dir, 'shop.db'), key: 'a-test-key-of-32-characters-long' },
      { name: 'gone', type: 'postgres', url: 'postgres://postgres@127.0.0.1:1/test', connect_timeout: '2s' },
      { name: 'narrow', type: 'postgres', url: SHARED_POSTGRES, max_connections: 1, connect_timeout: '300ms' },
    ],
    routes: [
      {
        id: 'datasets.orders', methods: ['GET'], path: '/datasets/orders',
        dataset: {
          source: 'warehouse', sql: ORDERS_SQL, page_size: 5,
          params: {
            region: { type: 'enum', values: ['eu', 'us'], required: true },
            since: { type: 'date', default: '-3650d', min: '-3650d' },
            min_total: { type: 'number', min: 0, max: 100_000 },
            ids: { type: 'int', list: true, max_items: 5, min: 1 },
            paid: { type: 'bool' },
            before: { type: 'timestamp' },
            email: { type: 'string', max: 64 },
          },
          masks: { customer_email: { with: 'email_domain', unless_roles: ['finance'] } },
        },
      },
      {
        id: 'datasets.hashed', methods: ['GET'], path: '/datasets/hashed',
        dataset: { source: 'warehouse', sql: `SELECT id, customer_email FROM ${TABLE} WHERE id <= 3 ORDER BY id`, masks: { customer_email: { with: 'hash' } } },
      },
      {
        id: 'datasets.order', methods: ['GET'], path: '/datasets/orders/:id',
        dataset: { source: 'warehouse', sql: `SELECT id, region FROM ${TABLE} WHERE id = :id AND tenant = :claims.tenant`, params: { id: { type: 'int', required: true } } },
      },
      {
        id: 'datasets.search', methods: ['GET'], path: '/datasets/search',
        dataset: { source: 'warehouse', sql: `SELECT id FROM ${TABLE} WHERE customer_email LIKE :q || '%' AND region = ANY(:regions) ORDER BY id`, params: { q: { type: 'string', required: true }, regions: { type: 'string', list: true, default: ['eu', 'us'] } } },
      },
      {
        id: 'datasets.described', methods: ['GET', 'HEAD'], path: '/datasets/described',
        dataset: { source: 'warehouse', sql: `SELECT id, paid, created_at, total FROM ${TABLE} WHERE region = :region AND id = ANY(:ids)`, params: { region: { type: 'string' }, ids: { type: 'int', list: true } }, masks: { total: { with: 'null' } } },
      },
      { id: 'datasets.write', methods: ['GET'], path: '/datasets/write', dataset: { source: 'warehouse', sql: `WITH gone AS (DELETE FROM ${TABLE} RETURNING id) SELECT count(*) FROM gone` } },
      { id: 'datasets.slow', methods: ['GET'], path: '/datasets/slow', dataset: { source: 'warehouse', sql: 'SELECT pg_sleep(5) AS slept', timeout: '300ms' } },
      { id: 'datasets.who', methods: ['GET'], path: '/datasets/who', dataset: { source: 'warehouse', sql: 'SELECT :principal.sub::text AS sub, :roles::text[] AS roles, :claims.tenant::text AS tenant' } },
      { id: 'datasets.capped', methods: ['GET'], path: '/datasets/capped', dataset: { source: 'warehouse', sql: 'SELECT g AS n FROM generate_series(1, 100) g', max_rows: 7 } },
      {
        id: 'lite.orders', methods: ['GET'], path: '/lite/orders',
        dataset: {
          source: 'shop', page_size: 4,
          sql: 'SELECT id, region, customer_email, total, paid, created_at FROM orders WHERE tenant = :claims.tenant AND region IN (SELECT value FROM json_each(:regions)) AND total >= :min_total ORDER BY id',
          params: { regions: { type: 'enum', values: ['eu', 'us'], list: true, default: ['eu', 'us'] }, min_total: { type: 'number', default: 0 } },
          masks: { customer_email: { with: 'redact', unless_roles: ['finance'] } },
        },
      },
      { id: 'lite.totals', methods: ['GET'], path: '/lite/totals', dataset: { source: 'shop', sql: 'SELECT region, count(*) AS n, sum(total) AS revenue FROM orders GROUP BY region ORDER BY region' } },
      { id: 'lite.write', methods: ['GET'], path: '/lite/write', dataset: { source: 'shop', sql: 'DELETE FROM orders RETURNING id' } },
      { id: 'narrow.sleep', methods: ['GET'], path: '/narrow/sleep', dataset: { source: 'narrow', sql: 'SELECT pg_sleep(:s) AS slept', params: { s: { type: 'number', default: 0 } } } },
      { id: 'gone.orders', methods: ['GET'], path: '/gone/orders', dataset: { source: 'gone', sql: 'SELECT 1 AS one' } },
    ],
    audit: { sinks: [{ type: 'sqlite', path: './audit.db' }], spill_dir: './spill', flush_interval: '50ms' },
  })
  await waitFor(async () => {
    const res = await request(`${gw.adminUrl}/readyz`)
    await res.body.dump()
    return res.statusCode === 200
  }, 'the gateway to be ready (the issuer\'s keys loaded)', 30_000)
}, 60_000)

afterAll(async () => {
  await gw?.close()
  await idp?.stop()
  await db?.query(`DROP TABLE IF EXISTS ${TABLE}`)
  await db?.end()
  if (dir) rmSync(dir, { recursive: true, force: true })
})

async function get(path: string, token = analyst, headers: Record<string, string> = {}) {
  const res = await request(`${gw.url}${path}`, { headers: { authorization: `Bearer ${token}`, ...headers } })
  const body = Buffer.from(await res.body.arrayBuffer())
  return { status: res.statusCode, headers: res.headers, body, text: body.toString('utf8'), json: () => JSON.parse(body.toString('utf8')) as Record<string, unknown> }
}

interface Page {
  rows: Array<Record<string, unknown>>
  next: string | null
  truncated: boolean
}

const acmeEu = ORDERS.filter((o) => o.tenant === 'acme' && o.region === 'eu')

describe('dataset routes on PostgreSQL', () => {
  it('answers the first page as JSON, the caller\'s tenant only, emails masked for an analyst', async () => {
    const res = await get('/datasets/orders?region=eu', analyst, { 'x-request-id': 'ds-first-page' })
    expect(res.status, res.text).toBe(200)
    expect(res.headers['content-type']).toBe('application/json')
    const page = res.json() as unknown as Page
    expect(page.rows.map((r) => r.id)).toEqual(acmeEu.slice(0, 5).map((o) => o.id))
    expect(page.rows[0]).toEqual({ id: 1, region: 'eu', customer_email: '***@example.com', total: 10.5, qty: 1, paid: false, created_at: expect.stringMatching(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z$/) })
    expect(page.next).toEqual(expect.any(String))
    expect(page.truncated).toBe(false)
  })

  it('finance sees the emails unmasked', async () => {
    const page = (await get('/datasets/orders?region=eu', finance)).json() as unknown as Page
    expect(page.rows[0]?.customer_email).toBe('customer1@example.com')
  })

  it('pages to the end with the signed cursor, every row once', async () => {
    const ids: unknown[] = []
    let next: string | null = null
    let pages = 0
    do {
      const res = await get(`/datasets/orders?region=eu${next ? `&cursor=${encodeURIComponent(next)}` : ''}`)
      expect(res.status).toBe(200)
      const page = res.json() as unknown as Page
      ids.push(...page.rows.map((r) => r.id))
      next = page.next
      pages++
    } while (next !== null && pages < 20)
    expect(ids).toEqual(acmeEu.map((o) => o.id))
    expect(pages).toBe(Math.ceil(acmeEu.length / 5)) // the last page knows it is the last: no empty page after it
  })

  it('refuses a tampered cursor, and a cursor taken to other parameters, with 400 invalid_parameter', async () => {
    const next = ((await get('/datasets/orders?region=eu')).json() as unknown as Page).next as string
    // Sealed: the position cannot be read, and one byte changed anywhere is refused.
    const sealed = Buffer.from(next, 'base64url')
    expect(sealed.toString('latin1')).not.toContain('"a"')
    sealed[20] = (sealed[20] as number) ^ 1
    const tampered = await get(`/datasets/orders?region=eu&cursor=${sealed.toString('base64url')}`)
    expect(tampered.status).toBe(400)
    expect(tampered.json()).toMatchObject({ code: 'invalid_parameter' })
    expect(tampered.json().detail).toContain('"cursor"')
    const elsewhere = await get(`/datasets/orders?region=us&cursor=${encodeURIComponent(next)}`)
    expect(elsewhere.status).toBe(400)
    expect(elsewhere.json().detail).toContain('other parameters')
  })

  it('binds every parameter type', async () => {
    const ids = async (query: string) => ((await get(`/datasets/orders?region=eu&${query}`)).json() as unknown as Page).rows.map((r) => r.id)
    expect(await ids('ids=1,3&ids=5')).toEqual([1, 3, 5])
    expect(await ids('min_total=300')).toEqual(acmeEu.filter((o) => o.total >= 300).slice(0, 5).map((o) => o.id))
    expect(await ids('paid=false')).toEqual(acmeEu.filter((o) => !o.paid).slice(0, 5).map((o) => o.id))
    expect(await ids('since=-3d')).toEqual(acmeEu.filter((o) => Date.parse(o.created_at) >= Math.floor(now / 86_400_000) * 86_400_000 - 3 * 86_400_000).map((o) => o.id))
    const before = new Date(now - 30 * 86_400_000).toISOString()
    expect(await ids(`before=${before}`)).toEqual(acmeEu.filter((o) => o.created_at < before).slice(0, 5).map((o) => o.id))
    expect(await ids('email=customer5%40shop.test')).toEqual([5])
    expect((await get('/datasets/orders/5')).json()).toMatchObject({ rows: [{ id: 5, region: 'eu' }] })
  })

  it.each([
    ['region is required', '/datasets/orders', 'region', 'required'],
    ['region outside its enum', '/datasets/orders?region=asia', 'region', 'one of eu, us'],
    ['an int that is not one', '/datasets/orders?region=eu&ids=1,x', 'ids', 'an integer'],
    ['an int under its min', '/datasets/orders?region=eu&ids=0', 'ids', 'at least 1'],
    ['too many list items', '/datasets/orders?region=eu&ids=1,2,3,4,5,6', 'ids', 'at most 5 values'],
    ['a number that is not one', '/datasets/orders?region=eu&min_total=1e', 'min_total', 'a number'],
    ['a number over its max', '/datasets/orders?region=eu&min_total=100001', 'min_total', 'at most 100000'],
    ['a bool that is not one', '/datasets/orders?region=eu&paid=maybe', 'paid', 'true or false'],
    ['a date that is not one', '/datasets/orders?region=eu&since=2026-02-30', 'since', 'a date: YYYY-MM-DD, today, or relative like -30d'],
    ['a date before its min', '/datasets/orders?region=eu&since=-4000d', 'since', 'not before -3650d'],
    ['a timestamp that is not one', '/datasets/orders?region=eu&before=yesterday', 'before', 'a timestamp: RFC 3339 (2026-01-31T12:00:00Z), now, or relative like -12h'],
    ['a string over its max length', `/datasets/orders?region=eu&email=${'x'.repeat(65)}`, 'email', 'at most 64 characters'],
    ['a parameter given twice', '/datasets/orders?region=eu&region=us', 'region', 'one value expected, got several'],
    ['an unknown parameter', '/datasets/orders?region=eu&regoin=eu', 'regoin', 'not a parameter of this dataset'],
    ['an unknown format', '/datasets/orders?region=eu&format=xml', 'format', 'one of json, ndjson, csv, arrow'],
    ['a path parameter that is not an int', '/datasets/orders/abc', 'id', 'an integer'],
  ])('%s: 400 invalid_parameter naming it', async (_what, path, name, rule) => {
    const res = await get(path)
    expect(res.status).toBe(400)
    const problem = res.json()
    expect(problem.code).toBe('invalid_parameter')
    expect(problem.detail).toBe(`Parameter "${name}": ${rule}.`)
  })

  it.each([
    ['a string parameter', "/datasets/search?q=%27%20OR%201%3D1%20--"],
    ['a string parameter closing the statement', "/datasets/search?q=x%27%3B%20DROP%20TABLE%20" + TABLE + "%3B%20--"],
    ['a list item', "/datasets/search?q=c&regions=eu%27%20OR%20%271%27%3D%271"],
    ['a path parameter', '/datasets/orders/1%20OR%201%3D1'],
    ['an email parameter', "/datasets/orders?region=eu&email=x%27%20OR%20%27a%27%3D%27a"],
    ['an enum parameter', "/datasets/orders?region=eu%27%20OR%20%271%27%3D%271"],
    ['an int list item', '/datasets/orders?region=eu&ids=1%29%20OR%20%281%3D1'],
    ['a number parameter', '/datasets/orders?region=eu&min_total=0%20OR%201%3D1'],
    ['a bool parameter', "/datasets/orders?region=eu&paid=true%27%20OR%20%271"],
    ['a date parameter', "/datasets/orders?region=eu&since=2020-01-01%27%20OR%20%271%27%3D%271"],
    ['a timestamp parameter', "/datasets/orders?region=eu&before=2030-01-01T00%3A00%3A00Z%27%3B%20DELETE%20FROM%20" + TABLE + "%3B--"],
    ['the cursor', "/datasets/orders?region=eu&cursor=%27%3B%20DROP%20TABLE%20" + TABLE + "%3B--"],
  ])('an injection attempt in %s finds nothing and changes nothing', async (_what, path) => {
    const res = await get(path)
    expect([200, 400]).toContain(res.status)
    if (res.status === 200) expect((res.json() as unknown as Page).rows).toEqual([])
    expect((await db.query(`SELECT count(*)::int AS n FROM ${TABLE}`)).rows[0].n).toBe(ORDERS.length)
  })

  it('an injection attempt in a claim is bound too: a tenant claim of \' OR \'1\'=\'1 sees no rows', async () => {
    const sneaky = await idp.mint({ sub: 'eve', groups: ['analyst'], tenant: "acme' OR '1'='1" })
    const page = (await get('/datasets/orders?region=eu', sneaky)).json() as unknown as Page
    expect(page.rows).toEqual([])
  })

  it('binds the caller: :principal.sub, :roles and :claims.NAME', async () => {
    const page = (await get('/datasets/who', finance)).json() as unknown as Page
    expect(page.rows).toEqual([{ sub: 'fin', roles: '{analyst,finance}', tenant: 'acme' }])
  })

  it('a write through a dataset is refused by the read-only transaction: 502 datasource_error, nothing deleted', async () => {
    const res = await get('/datasets/write')
    expect(res.status).toBe(502)
    expect(res.json()).toMatchObject({ code: 'datasource_error' })
    expect(res.json().detail).toContain('read-only')
    expect((await db.query(`SELECT count(*)::int AS n FROM ${TABLE}`)).rows[0].n).toBe(ORDERS.length)
  })

  it('a statement longer than the timeout is cancelled: 504 query_timeout', async () => {
    const started = Date.now()
    const res = await get('/datasets/slow')
    expect(res.status).toBe(504)
    expect(res.json()).toMatchObject({ code: 'query_timeout' })
    expect(Date.now() - started).toBeLessThan(4_500)
  })

  it('max_rows cuts the result and says so (JSON body, and a header when known before the first byte)', async () => {
    const res = await get('/datasets/capped')
    const page = res.json() as unknown as Page
    expect(page.rows).toHaveLength(7)
    expect(page).toMatchObject({ next: null, truncated: true })
    expect(res.headers['bouncer-truncated']).toBe('true')
    const csv = await get('/datasets/capped?format=csv')
    expect(csv.text.split('\r\n').filter(Boolean)).toHaveLength(8)
    expect(csv.headers['bouncer-truncated']).toBe('true')
  })

  it('hash masks with a keyed HMAC: stable, not the value, the same for every caller without the role', async () => {
    const a = (await get('/datasets/hashed')).json() as unknown as Page
    const b = (await get('/datasets/hashed', finance)).json() as unknown as Page
    expect(a.rows).toEqual(b.rows)
    expect(a.rows[0]?.customer_email).toMatch(/^[0-9a-f]{32}$/)
    expect(new Set(a.rows.map((r) => r.customer_email)).size).toBe(3)
  })

  it('masks apply in every format: JSON, NDJSON, CSV and Arrow', async () => {
    const ndjson = await get('/datasets/orders?region=eu', analyst, { accept: 'application/x-ndjson' })
    expect(ndjson.headers['content-type']).toBe('application/x-ndjson')
    const lines = ndjson.text.trim().split('\n').map((line) => JSON.parse(line) as Record<string, unknown>)
    expect(lines.map((l) => l.customer_email)).toEqual(acmeEu.slice(0, 5).map((o) => `***@${o.customer_email.split('@')[1]}`))
    expect(ndjson.headers['bouncer-next-cursor']).toEqual(expect.any(String))

    const csv = await get('/datasets/orders?region=eu&format=csv')
    expect(csv.headers['content-type']).toContain('text/csv')
    const rows = csv.text.split('\r\n')
    expect(rows[0]).toBe('id,region,customer_email,total,qty,paid,created_at')
    expect(rows[1]).toMatch(/^1,eu,\*\*\*@example\.com,10\.50,1,false,\d{4}-\d\d-\d\dT[\d:.]+Z$/)
    expect(csv.text).not.toContain('customer1@')

    const arrow = await get('/datasets/orders?region=eu', analyst, { accept: 'application/vnd.apache.arrow.stream' })
    expect(arrow.headers['content-type']).toBe('application/vnd.apache.arrow.stream')
    const table = tableFromIPC(arrow.body)
    expect(table.numRows).toBe(5)
    expect(table.schema.fields.map((f) => f.name)).toEqual(['id', 'region', 'customer_email', 'total', 'qty', 'paid', 'created_at'])
    const first = table.get(0)?.toJSON() as Record<string, unknown>
    expect(first).toMatchObject({ id: 1, region: 'eu', customer_email: '***@example.com', total: 10.5, qty: 1, paid: false })
    expect(typeof first.created_at).toBe('number')
    expect(arrow.body.includes(Buffer.from('customer1@'))).toBe(false)

    const unmasked = tableFromIPC((await get('/datasets/orders?region=eu&format=arrow', finance)).body)
    expect(unmasked.get(0)?.toJSON()).toMatchObject({ customer_email: 'customer1@example.com' })
  })

  it('the audit record names the masked columns (and none for a caller who sees them)', async () => {
    await get('/datasets/orders?region=eu', analyst, { 'x-request-id': 'ds-audit-masked' })
    await get('/datasets/orders?region=eu', finance, { 'x-request-id': 'ds-audit-unmasked' })
    const source = { type: 'sqlite' as const, path: join(gw.dir, 'audit.db') }
    let records: Array<Record<string, unknown>> = []
    await waitFor(async () => (records = (await searchAudit(source, { limit: 500 })).filter((r) => String(r.request_id).startsWith('ds-audit-'))).length === 2, 'the audit records')
    expect(records.find((r) => r.request_id === 'ds-audit-masked')).toMatchObject({ route: 'datasets.orders', upstream: 'dataset:warehouse', status: 200, masked: 'customer_email' })
    expect(records.find((r) => r.request_id === 'ds-audit-unmasked')).toMatchObject({ masked: null })
  })

  it('_schema describes a dataset that never ran, from PostgreSQL\'s description of its statement', async () => {
    const res = await get('/datasets/described/_schema')
    expect(res.status, res.text).toBe(200)
    const schema = res.json() as { properties: Record<string, Record<string, unknown>>; 'x-bouncer-parameters': unknown }
    expect(Object.keys(schema.properties)).toEqual(['id', 'paid', 'created_at', 'total'])
    expect(schema.properties.total).toMatchObject({ type: ['number', 'string', 'null'], 'x-bouncer-mask': 'null' })
    expect(schema['x-bouncer-parameters']).toEqual({ region: { type: 'string', list: false, required: false }, ids: { type: 'int', list: true, required: false } })
  })

  it('HEAD answers the headers GET would, without rows', async () => {
    const res = await request(`${gw.url}/datasets/described?region=eu&ids=1&format=csv`, { method: 'HEAD', headers: { authorization: `Bearer ${analyst}` } })
    await res.body.dump()
    expect(res.statusCode).toBe(200)
    expect(res.headers['content-type']).toContain('text/csv')
  })

  it('_schema describes the columns as JSON Schema, with the caller\'s masks', async () => {
    const res = await get('/datasets/orders/_schema')
    expect(res.status).toBe(200)
    expect(res.headers['content-type']).toBe('application/schema+json')
    const schema = res.json() as { properties: Record<string, Record<string, unknown>>; 'x-bouncer-columns': string[] }
    expect(schema['x-bouncer-columns']).toEqual(['id', 'region', 'customer_email', 'total', 'qty', 'paid', 'created_at'])
    expect(schema.properties.id).toMatchObject({ type: ['integer', 'null'] })
    expect(schema.properties.paid).toMatchObject({ type: ['boolean', 'null'] })
    expect(schema.properties.created_at).toMatchObject({ anyOf: [{ format: 'date-time' }, { pattern: expect.any(String) }] })
    expect(schema.properties.customer_email).toMatchObject({ 'x-bouncer-mask': 'email_domain' })
  })
})

describe('dataset routes on SQLite', () => {
  const acme = ORDERS.filter((o) => o.tenant === 'acme')

  it('binds a list through json_each and pages to the end', async () => {
    const ids: unknown[] = []
    let next: string | null = null
    let pages = 0
    do {
      const page = (await get(`/lite/orders?regions=eu,us&min_total=20${next ? `&cursor=${encodeURIComponent(next)}` : ''}`)).json() as unknown as Page
      ids.push(...page.rows.map((r) => r.id))
      next = page.next
      pages++
    } while (next !== null && pages < 30)
    expect(ids).toEqual(acme.filter((o) => o.total >= 20).map((o) => o.id))
  })

  it('masks for the analyst in CSV and Arrow, and not for finance', async () => {
    const csv = await get('/lite/orders?regions=eu&format=csv')
    expect(csv.text.split('\r\n')[1]).toMatch(/^1,eu,\*\*\*,10\.5,/)
    const arrow = tableFromIPC((await get('/lite/orders?regions=eu&format=arrow')).body)
    expect(arrow.get(0)?.toJSON()).toMatchObject({ id: 1n, customer_email: '***', paid: false })
    const open = (await get('/lite/orders?regions=eu', finance)).json() as unknown as Page
    expect(open.rows[0]).toMatchObject({ id: 1, customer_email: 'customer1@example.com', paid: false })
  })

  it('answers expressions (count, sum) as numbers: their kind is taken from the values', async () => {
    const page = (await get('/lite/totals')).json() as unknown as Page
    const eu = ORDERS.filter((o) => o.region === 'eu')
    expect(page.rows[0]).toEqual({ region: 'eu', n: eu.length, revenue: eu.reduce((sum, o) => sum + o.total, 0) })
  })

  it('refuses an enum list item outside its values', async () => {
    const res = await get('/lite/orders?regions=eu,mars')
    expect(res.status).toBe(400)
    expect(res.json().detail).toBe('Parameter "regions": one of eu, us.')
  })

  it('a write is refused: the file is opened read-only', async () => {
    const res = await get('/lite/write')
    expect(res.status).toBe(502)
    expect(res.json()).toMatchObject({ code: 'datasource_error' })
    expect(res.json().detail).toContain('read-only')
    const lite = new DatabaseSync(join(dir, 'shop.db'), { readOnly: true })
    expect((lite.prepare('SELECT count(*) AS n FROM orders').get() as { n: number }).n).toBe(ORDERS.length)
    lite.close()
  })
})

describe('a datasource that is down', () => {
  it('fails its own routes with 502 datasource_error, the others answer, and /readyz names it', async () => {
    const down = await get('/gone/orders')
    expect(down.status).toBe(502)
    expect(down.json()).toMatchObject({ code: 'datasource_error' })
    expect(down.json().detail).toContain('Datasource "gone" is unavailable')
    expect((await get('/datasets/orders?region=eu')).status).toBe(200)
    const ready = await request(`${gw.adminUrl}/readyz`)
    const body = (await ready.body.json()) as { checks: Record<string, string> }
    expect(ready.statusCode).toBe(200)
    expect(body.checks['datasource:gone']).toMatch(/^unavailable: /)
    expect(body.checks['datasource:warehouse']).toBe('connected')
    expect(body.checks['datasource:shop']).toBe('connected')
  })
})

describe('a datasource with every connection in use', () => {
  it('answers 503 upstream_saturated with Retry-After, and stays connected in /readyz', async () => {
    const holding = get('/narrow/sleep?s=3')
    await waitFor(async () => (await db.query("SELECT count(*)::int AS n FROM pg_stat_activity WHERE query LIKE 'SELECT pg_sleep($1)%' AND application_name = 'bouncer:narrow'")).rows[0].n === 1, 'the only connection to be busy', 30_000)
    const refused = await get('/narrow/sleep')
    expect(refused.status).toBe(503)
    expect(refused.json()).toMatchObject({ code: 'upstream_saturated' })
    expect(refused.headers['retry-after']).toBe('1')
    expect((await holding).status).toBe(200)
    expect((await get('/narrow/sleep')).status).toBe(200)
    const body = (await (await request(`${gw.adminUrl}/readyz`)).body.json()) as { checks: Record<string, string> }
    expect(body.checks['datasource:narrow']).toBe('connected')
  }, 60_000)
})

describe('the loader', () => {
  const check = (sql: string, extra = '') => loadConfigText(`datasources:\n  - { name: wh, type: sqlite, path: ./x.db }\nroutes:\n  - id: d\n    path: /d\n    methods: [GET]\n    dataset:\n      source: wh\n      sql: ${JSON.stringify(sql)}\n${extra}`, 'bouncer.yaml', {})
  const errors = (loaded: ReturnType<typeof loadConfigText>) => loaded.diagnostics.filter((d) => d.severity === 'error').map((d) => d.message)

  it('refuses a sql of more than one statement', () => {
    expect(errors(check('SELECT 1; DROP TABLE orders'))).toContain('the sql holds 2 statements: a dataset runs exactly one')
    expect(errors(check("SELECT ';' AS semi; -- a trailing comment"))).toEqual([])
  })

  it('refuses a placeholder that is not a declared parameter', () => {
    expect(errors(check('SELECT * FROM t WHERE a = :a'))).toContain(':a is not a declared parameter (declare it under params)')
  })

  it('refuses a dataset route that takes POST', () => {
    const loaded = loadConfigText('datasources:\n  - { name: wh, type: sqlite, path: ./x.db }\nroutes:\n  - { id: d, path: /d, methods: [POST], dataset: { source: wh, sql: "SELECT 1" } }\n', 'bouncer.yaml', {})
    expect(errors(loaded)).toContain('a dataset answers GET (and HEAD): POST cannot reach it')
  })
})
