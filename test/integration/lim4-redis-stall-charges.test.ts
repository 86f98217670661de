// Found by the limits probe (lim4): a Redis that stalls (a busy script, a slow fsync) for longer than
// the silence that drops the store's connection (4 × timeout, at least 1 s). The requests during the
// stall met on_error (503 with deny), yet each was charged: the dropped connection is only half
// closed, Redis ran their takes on waking and answered, and the refunds of those late answers were
// sent while the client was connecting again and failed ("Stream isn't writeable"). A 2.5 s stall
// took 8 of a 1000/d quota from a caller refused throughout. Refunds now wait for the connection.
import { Redis } from 'ioredis'
import { request } from 'undici'
import { afterAll, beforeAll, expect, it } from 'vitest'
import { startTestGateway, type TestGateway } from '../helpers/gateway.ts'
import { startRedis, uniquePrefix, type TestRedis } from '../helpers/redis.ts'
import { startUpstream, type TestUpstream } from '../helpers/upstream.ts'
import { waitFor } from '../helpers/wait.ts'

let redis: TestRedis
let upstream: TestUpstream
let gateway: TestGateway
let side: Redis

beforeAll(async () => {
  redis = await startRedis()
  side = new Redis({ port: redis.port, host: '127.0.0.1', maxRetriesPerRequest: 0 })
  upstream = await startUpstream((_req, res) => void res.end('ok'))
  gateway = await startTestGateway({
    upstreams: [{ name: 'api', url: upstream.url }],
    limits: [{ name: 'daily', key: 'header:X-Client', quota: '1000/d' }],
    limits_store: { type: 'redis', url: redis.url, prefix: uniquePrefix('lim4-stall'), timeout: '100ms', on_error: 'deny' },
    routes: [{ id: 'r', path: '/r', upstream: 'api', public: true, limits: ['daily'] }],
  })
}, 60_000)

afterAll(async () => {
  await gateway?.close()
  side?.disconnect()
  await redis?.stop()
  await upstream?.close()
})

async function hit() {
  const res = await request(`${gateway.url}/r`, { headers: { 'x-client': 'probe' } })
  await res.body.dump()
  return { status: res.statusCode, ratelimit: res.headers.ratelimit }
}

it('takes refused by on_error during a stall are not charged once Redis wakes', async () => {
  await waitFor(async () => (await hit()).status === 200, 'the store to connect', 20_000)
  const before = await hit()
  expect(before).toMatchObject({ status: 200 })
  // Redis busy for 2.5 s: a script that spins on TIME.
  const stall = side.eval("local t = redis.call('TIME'); local s = tonumber(t[1]) + tonumber(t[2]) / 1e6; while true do local n = redis.call('TIME'); if tonumber(n[1]) + tonumber(n[2]) / 1e6 - s > 2.5 then break end end return 1", 0)
  await new Promise((r) => setTimeout(r, 100))
  const during: number[] = []
  let done = false
  void stall.finally(() => (done = true))
  while (!done) during.push((await hit()).status)
  await stall
  await waitFor(async () => (await hit()).status !== 503, 'limits back', 20_000)
  const after = await hit()
  // 2 taken before, 1 by the wait for limits back, 1 by this request: the stall's refusals cost nothing.
  expect(during.length).toBeGreaterThan(10) // past the 1 s of silence that drops the connection
  expect(new Set(during)).toEqual(new Set([503]))
  expect(after).toMatchObject({ status: 200 })
  expect(after.ratelimit).toMatch(/^"daily";r=996;t=\d+$/)
  expect(gateway.logs.filter((line) => line.includes('could not be given back'))).toEqual([])
}, 30_000)
