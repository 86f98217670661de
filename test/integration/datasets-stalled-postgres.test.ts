// A PostgreSQL datasource whose server stops answering without closing anything (a network stall; a
// relay that freezes here, in front of the real server). statement_timeout is the server's own
// bound, so nothing ended the request: it and its pooled connection were held until TCP gave up
// (~15 minutes; found by a probe). Now the client gives up at the dataset's timeout plus a margin
// (5 s): 504 query_timeout, the connection dropped, and the pool serves again once the stall ends.
import { request } from 'undici'
import { afterAll, beforeAll, expect, it } from 'vitest'
import { startFreezingRelay, type FreezingRelay } from '../helpers/faults.ts'
import { startTestGateway, type TestGateway } from '../helpers/gateway.ts'

let relay: FreezingRelay
let gateway: TestGateway

beforeAll(async () => {
  relay = await startFreezingRelay(5432)
  gateway = await startTestGateway({
    datasources: [{ name: 'wh', type: 'postgres', url: `postgres://postgres@127.0.0.1:${relay.port}/test`, max_connections: 1, connect_timeout: '1s', key: 'a-test-key-of-32-characters-long' }],
    routes: [
      { id: 'numbers', methods: ['GET'], path: '/numbers', public: true, dataset: { source: 'wh', sql: 'SELECT g AS id FROM generate_series(1, 5) g ORDER BY g', timeout: '1s' } },
      // Paged with no key: its first request learns the statement's columns from the database.
      { id: 'paged', methods: ['GET'], path: '/paged', public: true, dataset: { source: 'wh', sql: 'SELECT g AS id FROM generate_series(1, 5) g', timeout: '1s', page_size: 2 } },
    ],
  })
})

afterAll(async () => {
  await Promise.race([gateway?.close(), new Promise((resolve) => setTimeout(resolve, 3_000))])
  relay?.close()
})

async function numbers(): Promise<{ status: number; code?: string }> {
  const res = await request(`${gateway.url}/numbers`, { headersTimeout: 20_000 })
  const body = (await res.body.json()) as { code?: string }
  return { status: res.statusCode, code: body.code }
}

it('a stalled database: 504 query_timeout at the timeout plus 5 s, and the pool serves again after', async () => {
  expect((await numbers()).status).toBe(200)
  relay.freeze()
  const started = Date.now()
  expect(await numbers()).toEqual({ status: 504, code: 'query_timeout' })
  const took = Date.now() - started
  expect(took).toBeGreaterThanOrEqual(5_500) // not before the server's own timeout could have answered
  expect(took).toBeLessThan(12_000)
  relay.thaw()
  // Its one connection was dropped, not kept lent: a new one serves.
  expect((await numbers()).status).toBe(200)
  expect(gateway.state.inFlight).toBe(0)
}, 40_000)

// Found by an adversarial probe: learning a paged dataset's columns (its first request, or _schema)
// had no bound of the client's: over a stalled database it waited until TCP gave up.
it("a stalled database while a paged dataset learns its columns: 504 query_timeout at describe's 10 s plus 5 s, and the pool serves again after", async () => {
  expect((await numbers()).status).toBe(200) // a connection in the pool: the stall meets the statement, not the connect
  relay.freeze()
  const started = Date.now()
  const res = await request(`${gateway.url}/paged`, { headersTimeout: 40_000 })
  const body = (await res.body.json()) as { code?: string }
  expect({ status: res.statusCode, code: body.code }).toEqual({ status: 504, code: 'query_timeout' })
  expect(Date.now() - started).toBeLessThan(30_000)
  relay.thaw()
  expect((await numbers()).status).toBe(200)
  const paged = await request(`${gateway.url}/paged`)
  await paged.body.dump()
  expect(paged.statusCode).toBe(200)
}, 60_000)
