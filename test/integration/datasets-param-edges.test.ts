// Found by an adversarial probe (helper): dataset parameters at the edges of their types. Every value the rules refuse must be
// 400 invalid_parameter naming the parameter (never a 500, never silently another value).
import { request } from 'undici'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { startTestGateway, type TestGateway } from '../helpers/gateway.ts'
import { SHARED_POSTGRES } from '../helpers/postgres.ts'

let gw: TestGateway

beforeAll(async () => {
  gw = await startTestGateway({
    datasources: [{ name: 'warehouse', type: 'postgres', url: SHARED_POSTGRES, max_connections: 2, key: 'a-test-key-of-32-characters-long' }],
    routes: [
      {
        id: 'ds.echo',
        methods: ['GET'],
        path: '/ds/echo',
        public: true,
        dataset: { source: 'warehouse', sql: 'SELECT :ts::timestamptz AS ts, :day::date AS day', params: { ts: { type: 'timestamp' }, day: { type: 'date' } } },
      },
    ],
  })
})

afterAll(async () => {
  await gw?.close()
})

async function get(query: string): Promise<{ status: number; body: Record<string, unknown> }> {
  const res = await request(`${gw.url}/ds/echo?${query}`)
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
