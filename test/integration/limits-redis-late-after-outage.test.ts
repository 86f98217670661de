// Found by the limits probe (helper): the Redis limits store drops a connection that answers nothing
// for 4 × its timeout, timed from the oldest take still waiting for an answer. A take refused at
// once (Redis down, refusing writes when full) was no answer to it, so the clock ran on from the
// outage: once Redis was back, the first check answered late (a Redis warming up, a slow link)
// dropped the fresh connection as silent ("answers nothing", and connecting again), and /readyz
// said "no answer for 1000 ms". An error is an answer: it ends the silence, and a late check
// after it is a slow Redis, as any other ("ready, but slow").
import { request } from 'undici'
import { afterAll, beforeAll, expect, it } from 'vitest'
import { startFreezingRelay, type FreezingRelay } from '../helpers/faults.ts'
import { startTestGateway, type TestGateway } from '../helpers/gateway.ts'
import { startRedis, uniquePrefix, type TestRedis } from '../helpers/redis.ts'
import { startUpstream, type TestUpstream } from '../helpers/upstream.ts'
import { waitFor } from '../helpers/wait.ts'

let redis: TestRedis
let relay: FreezingRelay
let upstream: TestUpstream
let gateway: TestGateway

beforeAll(async () => {
  redis = await startRedis()
  relay = await startFreezingRelay(redis.port)
  upstream = await startUpstream((_req, res) => void res.end('ok'))
  gateway = await startTestGateway({
    upstreams: [{ name: 'api', url: upstream.url }],
    limits: [{ name: 'pace', key: 'header:X-Client', rate: '1000/s', burst: 1000 }],
    limits_store: { type: 'redis', url: `redis://127.0.0.1:${relay.port}`, prefix: uniquePrefix('late-after-outage'), timeout: '250ms', on_error: 'deny' },
    routes: [{ id: 'r', path: '/r', upstream: 'api', public: true, limits: ['pace'] }],
  })
}, 60_000)

afterAll(async () => {
  await gateway?.close()
  relay?.close()
  await redis?.stop()
  await upstream?.close()
})

async function hit(): Promise<number> {
  const res = await request(`${gateway.url}/r`, { headers: { 'x-client': 'dashboard' } })
  await res.body.dump()
  return res.statusCode
}

async function limitsStore(): Promise<string | undefined> {
  const res = await request(`${gateway.adminUrl}/readyz`)
  return ((await res.body.json()) as { checks?: Record<string, string> }).checks?.limits_store
}

it('a check answered late just after Redis returns is a slow Redis, not a silent connection', async () => {
  await waitFor(async () => (await hit()) === 200, 'the store to connect', 20_000)
  await redis.stop()
  // Refused at once, for longer than the 1 s of silence that drops a connection.
  const down = Date.now()
  await waitFor(async () => (await hit()) === 503 && Date.now() - down > 1_500, 'limited requests to meet on_error for 1.5 s', 20_000)
  await redis.start()
  await waitFor(async () => (await limitsStore()) === 'ready', 'the store to reconnect', 20_000)
  relay.delay(600)
  try {
    expect(await hit()).toBe(503) // later than the 250 ms timeout: on_error
    expect(await limitsStore()).toBe('ready, but slow: checks take longer than limits_store.timeout (250 ms), so on_error answers them')
    expect(gateway.logs.filter((line) => line.includes('limits store answers nothing'))).toEqual([])
  } finally {
    relay.delay(0)
  }
  await waitFor(async () => (await hit()) === 200, 'limits to be back', 20_000)
}, 60_000)
