// Found by a probe comparing the dataset route with `psql \copy … TO STDOUT WITH CSV`: values at
// the edges of PostgreSQL's types came out changed, null or off their declared JSON Schema. Each
// value must arrive as the database holds it, or in a documented form that says what it was.
import { tableFromIPC } from 'apache-arrow'
import { request } from 'undici'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { startTestGateway, type TestGateway } from '../helpers/gateway.ts'
import { SHARED_POSTGRES } from '../helpers/postgres.ts'

let gw: TestGateway

const EDGES = `SELECT * FROM (VALUES
  (1, date '2026-01-31', timestamp '2026-01-31 12:34:56.789012', timestamptz '2026-01-31 12:34:56.789012+00'),
  (2, date '0044-03-15 BC', timestamp '0044-03-15 12:00:00.5 BC', timestamptz '0001-01-01 00:00:00+00 BC'),
  (3, date '10000-01-01', timestamp '10000-01-01 00:00:00', timestamptz '10000-01-01 00:00:00+00'),
  (4, date 'infinity', timestamp 'infinity', timestamptz 'infinity'),
  (5, date '-infinity', timestamp '-infinity', timestamptz '-infinity')
) AS v(id, day, local_at, at) ORDER BY id`

const NUMBERS = `SELECT * FROM (VALUES
  (1, 1.5::float8, 1.50::numeric, ''::text, '\\x0102'::bytea),
  (2, 'NaN'::float8, 'NaN'::numeric, NULL::text, NULL::bytea),
  (3, 'Infinity'::float8, 'Infinity'::numeric, 'x', ''::bytea),
  (4, '-Infinity'::float8, '-Infinity'::numeric, 'y', NULL),
  (5, 0.1::float8, 123456789012345678901234567890.123456789012345678901234567890::numeric, 'z', NULL),
  (6, 1e300::float8, 9007199254740993::numeric, 'z', NULL)
) AS v(id, f, n, t, b) ORDER BY id`

beforeAll(async () => {
  gw = await startTestGateway({
    datasources: [{ name: 'warehouse', type: 'postgres', url: SHARED_POSTGRES, max_connections: 2, key: 'a-test-key-of-32-characters-long' }],
    routes: [
      { id: 'ds.edges', methods: ['GET'], path: '/ds/edges', public: true, dataset: { source: 'warehouse', sql: EDGES } },
      { id: 'ds.numbers', methods: ['GET'], path: '/ds/numbers', public: true, dataset: { source: 'warehouse', sql: NUMBERS } },
      { id: 'ds.oid', methods: ['GET'], path: '/ds/oid', public: true, dataset: { source: 'warehouse', sql: 'SELECT 4294967295::oid AS o, 26::oid AS small' } },
    ],
  })
})

afterAll(async () => {
  await gw?.close()
})

async function get(path: string): Promise<{ status: number; text: string; body: Buffer }> {
  const res = await request(`${gw.url}${path}`)
  const body = Buffer.from(await res.body.arrayBuffer())
  return { status: res.statusCode, text: body.toString('utf8'), body }
}

async function rows(path: string): Promise<Array<Record<string, unknown>>> {
  const res = await get(path)
  expect(res.status, res.text).toBe(200)
  return (JSON.parse(res.text) as { rows: Array<Record<string, unknown>> }).rows
}

/** Arrow's raw values: Date32 days, timestamps' int64 milliseconds. */
async function arrowColumns(path: string): Promise<Record<string, unknown[]>> {
  const res = await get(`${path}?format=arrow`)
  expect(res.status, res.text).toBe(200)
  const table = tableFromIPC(res.body)
  return Object.fromEntries(table.schema.fields.map((field) => {
    const data = table.getChild(field.name)!.data[0]!
    return [field.name, Array.from({ length: data.length }, (_, i) => (data.getValid(i) ? (data.values as ArrayLike<unknown>)[i] : null))]
  }))
}

const RFC3339_DATE = /^\d{4}-\d\d-\d\d$/
const RFC3339_DATE_TIME = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|[+-]\d\d:\d\d)$/

describe('dates and timestamps at the edges of PostgreSQL\'s range', () => {
  it('Arrow keeps BC years and five-digit years, and sends ±infinity as the type\'s largest and smallest value, never null', async () => {
    const columns = await arrowColumns('/ds/edges')
    // Date32: days since 1970-01-01. 44 BC is year -43 (proleptic Gregorian), as PostgreSQL counts.
    expect(columns.day).toEqual([20_484, -735_160, 2_932_897, 2_147_483_647, -2_147_483_648])
    expect(columns.local_at).toEqual([1_769_862_896_789n, -63_517_780_799_500n, 253_402_300_800_000n, 9_223_372_036_854_775_807n, -9_223_372_036_854_775_808n])
    expect(columns.at).toEqual([1_769_862_896_789n, -62_167_219_200_000n, 253_402_300_800_000n, 9_223_372_036_854_775_807n, -9_223_372_036_854_775_808n])
    expect(new Date(-63_517_780_799_500).toISOString()).toBe('-000043-03-15T12:00:00.500Z')
  })

  it('JSON writes years outside RFC 3339 in ISO 8601\'s expanded form, a timestamp without zone without one, and infinity by name', async () => {
    expect(await rows('/ds/edges')).toEqual([
      { id: 1, day: '2026-01-31', local_at: '2026-01-31T12:34:56.789012', at: '2026-01-31T12:34:56.789012Z' },
      { id: 2, day: '-000043-03-15', local_at: '-000043-03-15T12:00:00.5', at: '0000-01-01T00:00:00Z' },
      { id: 3, day: '+010000-01-01', local_at: '+010000-01-01T00:00:00', at: '+010000-01-01T00:00:00Z' },
      { id: 4, day: 'infinity', local_at: 'infinity', at: 'infinity' },
      { id: 5, day: '-infinity', local_at: '-infinity', at: '-infinity' },
    ])
  })

  it('every value matches what _schema declares: RFC 3339 format, or the pattern beside it', async () => {
    const schema = JSON.parse((await get('/ds/edges/_schema')).text) as { properties: Record<string, Record<string, unknown>> }
    const { day, local_at: local, at } = schema.properties as Record<string, { anyOf?: Array<{ format?: string; pattern?: string }>; format?: string; pattern?: string }>
    expect(day?.format).toBeUndefined()
    expect(at?.format).toBeUndefined()
    // A timestamp without time zone is not an RFC 3339 date-time (which needs an offset).
    expect(local?.format).toBeUndefined()
    const matches = (value: unknown, format: RegExp, pattern: string | undefined) => typeof value === 'string' && (format.test(value) || new RegExp(pattern ?? '(?!)').test(value))
    for (const row of await rows('/ds/edges')) {
      expect(matches(row.day, RFC3339_DATE, day?.anyOf?.[1]?.pattern), String(row.day)).toBe(true)
      expect(day?.anyOf?.[0]?.format).toBe('date')
      expect(matches(row.at, RFC3339_DATE_TIME, at?.anyOf?.[1]?.pattern), String(row.at)).toBe(true)
      expect(at?.anyOf?.[0]?.format).toBe('date-time')
      expect(new RegExp(local?.pattern ?? '(?!)').test(String(row.local_at)), String(row.local_at)).toBe(true)
    }
  })

  it('CSV writes the same forms as JSON', async () => {
    const lines = (await get('/ds/edges?format=csv')).text.split('\r\n')
    expect(lines.slice(0, 4)).toEqual(['id,day,local_at,at', '1,2026-01-31,2026-01-31T12:34:56.789012,2026-01-31T12:34:56.789012Z', '2,-000043-03-15,-000043-03-15T12:00:00.5,0000-01-01T00:00:00Z', '3,+010000-01-01,+010000-01-01T00:00:00,+010000-01-01T00:00:00Z'])
    expect(lines[4]).toBe('4,infinity,infinity,infinity')
  })
})

describe('numbers, text and bytes', () => {
  it('JSON sends NaN and ±Infinity as strings, never as null (SQL NULL), and a numeric JavaScript cannot hold exactly as a string', async () => {
    expect(await rows('/ds/numbers')).toEqual([
      { id: 1, f: 1.5, n: 1.5, t: '', b: '0102' },
      { id: 2, f: 'NaN', n: 'NaN', t: null, b: null },
      { id: 3, f: 'Infinity', n: 'Infinity', t: 'x', b: '' },
      { id: 4, f: '-Infinity', n: '-Infinity', t: 'y', b: null },
      { id: 5, f: 0.1, n: '123456789012345678901234567890.123456789012345678901234567890', t: 'z', b: null },
      { id: 6, f: 1e300, n: '9007199254740993', t: 'z', b: null },
    ])
    const schema = JSON.parse((await get('/ds/numbers/_schema')).text) as { properties: Record<string, Record<string, unknown>> }
    expect(schema.properties.f).toMatchObject({ type: ['number', 'string', 'null'] })
    expect(schema.properties.n).toMatchObject({ type: ['number', 'string', 'null'] })
    expect(schema.properties.b).toMatchObject({ contentEncoding: 'hex' })
  })

  it('CSV tells an empty string ("") from NULL (nothing), as psql does', async () => {
    const lines = (await get('/ds/numbers?format=csv')).text.split('\r\n')
    expect(lines[1]).toBe('1,1.5,1.50,"",\\x0102')
    expect(lines[2]).toBe('2,NaN,NaN,,')
    expect(lines[3]).toBe('3,Infinity,Infinity,x,\\x')
  })

  it('Arrow keeps NaN and ±Infinity in Float64, and an empty string apart from null', async () => {
    const columns = await arrowColumns('/ds/numbers')
    expect(columns.f?.slice(0, 4)).toEqual([1.5, NaN, Infinity, -Infinity])
    const table = tableFromIPC((await get('/ds/numbers?format=arrow')).body)
    expect([0, 1, 2].map((i) => table.getChild('t')?.get(i))).toEqual(['', null, 'x'])
  })
})

describe('oid', () => {
  // Type 26 (oid) is unsigned 32-bit: read as 'int' (Int32), 4294967295 wrapped to -1 in Arrow.
  it('an oid above 2^31 keeps its value in every format (Arrow: Int64, not a wrapped Int32)', async () => {
    expect(await rows('/ds/oid')).toEqual([{ o: 4294967295, small: 26 }])
    expect((await get('/ds/oid?format=csv')).text).toBe('o,small\r\n4294967295,26\r\n')
    const columns = await arrowColumns('/ds/oid')
    expect(columns.o).toEqual([4_294_967_295n])
  })
})
