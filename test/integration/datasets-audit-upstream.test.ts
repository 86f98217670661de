// Found by a probe (helper): a dataset's failure before the first byte (504 query_timeout, 502
// datasource_error with the database down) was audited with `upstream` null, though README says the
// record's upstream is `dataset:SOURCE`; a failure mid-stream was recorded with it.
import { join } from 'node:path'
import { request } from 'undici'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { searchAudit } from '../../src/audit/search.ts'
import { startTestGateway, type TestGateway } from '../helpers/gateway.ts'
import { SHARED_POSTGRES } from '../helpers/postgres.ts'
import { waitFor } from '../helpers/wait.ts'

let gw: TestGateway

beforeAll(async () => {
  gw = await startTestGateway({
    datasources: [
      { name: 'warehouse', type: 'postgres', url: SHARED_POSTGRES, max_connections: 2 },
      { name: 'gone', type: 'postgres', url: 'postgres://postgres@127.0.0.1:1/test', connect_timeout: '2s' },
    ],
    routes: [
      { id: 'ds.slow', methods: ['GET'], path: '/slow', public: true, dataset: { source: 'warehouse', sql: 'SELECT pg_sleep(5) AS slept', timeout: '200ms' } },
      { id: 'ds.gone', methods: ['GET'], path: '/gone', public: true, dataset: { source: 'gone', sql: 'SELECT 1 AS one' } },
      { id: 'ds.typed', methods: ['GET'], path: '/typed', public: true, dataset: { source: 'warehouse', sql: 'SELECT :n::int AS n', params: { n: { type: 'int' } } } },
    ],
    audit: { sinks: [{ type: 'sqlite', path: './audit.db' }], spill_dir: './spill', flush_interval: '50ms' },
  })
})

afterAll(async () => {
  await gw?.close()
})

async function recordOf(path: string, id: string): Promise<Record<string, unknown>> {
  const res = await request(`${gw.url}${path}`, { headers: { 'x-request-id': id } })
  await res.body.dump()
  const source = { type: 'sqlite' as const, path: join(gw.dir, 'audit.db') }
  let record: Record<string, unknown> | undefined
  // The first search may come before the audit worker made the file's tables: it throws until then.
  const records = () => searchAudit(source, { limit: 100 }).catch(() => [])
  await waitFor(async () => (record = (await records()).find((r) => r.request_id === id)) !== undefined, `the audit record of ${id}`)
  return record as Record<string, unknown>
}

describe('the audit record of a dataset that failed before its first byte', () => {
  it('504 query_timeout names the dataset\'s datasource', async () => {
    expect(await recordOf('/slow', 'ds-upstream-timeout')).toMatchObject({ status: 504, code: 'query_timeout', decision: 'error', upstream: 'dataset:warehouse', upstream_ms: expect.any(Number) })
  })

  it('502 datasource_error with the database down names it too', async () => {
    expect(await recordOf('/gone', 'ds-upstream-down')).toMatchObject({ status: 502, code: 'datasource_error', decision: 'error', upstream: 'dataset:gone' })
  })

  it('so does _schema\'s 502 with the database down', async () => {
    expect(await recordOf('/gone/_schema', 'ds-upstream-schema-down')).toMatchObject({ status: 502, code: 'datasource_error', upstream: 'dataset:gone' })
  })

  it('a parameter refused before any query (400) is the dataset\'s answer too', async () => {
    expect(await recordOf('/typed?n=x', 'ds-upstream-param')).toMatchObject({ status: 400, code: 'invalid_parameter', decision: 'deny', upstream: 'dataset:warehouse', upstream_ms: null })
  })

  it('an answer is recorded as before', async () => {
    expect(await recordOf('/typed?n=1', 'ds-upstream-ok')).toMatchObject({ status: 200, code: null, upstream: 'dataset:warehouse' })
  })
})
