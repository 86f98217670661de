// The README: a request's trace id is "in the gateway's log lines about the request". The line
// a dataset's failed statement writes (`datasource NAME: the statement failed`, the message the
// client is pointed to) carried request_id alone: a jump from the trace to its logs missed it.
import { mkdtempSync, rmSync } from 'node:fs'
import { DatabaseSync } from 'node:sqlite'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { request } from 'undici'
import { afterAll, beforeAll, expect, it } from 'vitest'
import { startTestGateway, type TestGateway } from '../helpers/gateway.ts'
import { SHARED_POSTGRES } from '../helpers/postgres.ts'
import { waitFor } from '../helpers/wait.ts'

let gw: TestGateway
let dir: string

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'bouncer-tel2-dataset-'))
  new DatabaseSync(join(dir, 'lite.db')).close()
  gw = await startTestGateway({
    datasources: [
      { name: 'warehouse', type: 'postgres', url: SHARED_POSTGRES, max_connections: 1, key: 'a-test-key-of-32-characters-long' },
      { name: 'shop', type: 'sqlite', path: join(dir, 'lite.db'), key: 'a-test-key-of-32-characters-long' },
    ],
    routes: [
      { id: 'pg.fails', methods: ['GET'], path: '/pg', public: true, dataset: { source: 'warehouse', sql: 'SELECT 1 / (SELECT 0) AS n' } },
      { id: 'lite.fails', methods: ['GET'], path: '/lite', public: true, dataset: { source: 'shop', sql: 'SELECT n FROM no_such_table' } },
    ],
  })
})

afterAll(async () => {
  await gw?.close()
  rmSync(dir, { recursive: true, force: true })
})

async function failedLine(path: string, requestId: string, traceId: string): Promise<Record<string, unknown>> {
  const res = await request(`${gw.url}${path}`, { headers: { 'x-request-id': requestId, traceparent: `00-${traceId}-00f067aa0ba902b7-01` } })
  await res.body.dump()
  expect(res.statusCode).toBe(502)
  const line = () => gw.logs.join('').split('\n').filter(Boolean).map((text) => JSON.parse(text) as Record<string, unknown>).find((each) => each.request_id === requestId)
  await waitFor(() => line() !== undefined, `the log line of ${requestId}`)
  return line() as Record<string, unknown>
}

it('a PostgreSQL dataset\'s failed statement is logged with the request\'s trace id', async () => {
  const traceId = '4bf92f3577b34da6a3ce929d0e0e4736'
  expect(await failedLine('/pg', 'ds-pg', traceId)).toMatchObject({ msg: 'datasource warehouse: the statement failed', trace_id: traceId })
})

it('an SQLite dataset\'s failed statement is logged with the request\'s trace id', async () => {
  const traceId = '5bf92f3577b34da6a3ce929d0e0e4737'
  expect(await failedLine('/lite', 'ds-lite', traceId)).toMatchObject({ msg: 'datasource shop: the statement failed', trace_id: traceId })
})
