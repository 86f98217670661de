// Found by the limits probe (limfa2): a Redis limits store that is connected but refuses every check
// with an error of its own — out of memory under noeviction (OOM, the README's advice), a disk it
// cannot save to (MISCONF), a password or ACL the URL does not carry (NOAUTH, NOPERM) — made every
// limited request a 503 limits_unavailable (on_error: deny), while /readyz said limits_store
// "ready", as it once did for a Redis answering late. It now says the store refuses checks, and
// why, until one is answered.
import { Redis } from 'ioredis'
import { request } from 'undici'
import { afterAll, beforeAll, expect, it } from 'vitest'
import { startTestGateway, type TestGateway } from '../helpers/gateway.ts'
import { startRedis, type TestRedis } from '../helpers/redis.ts'
import { startUpstream, type TestUpstream } from '../helpers/upstream.ts'

let redis: TestRedis
let api: TestUpstream
let gw: TestGateway

beforeAll(async () => {
  redis = await startRedis()
  api = await startUpstream()
  gw = await startTestGateway({
    upstreams: [{ name: 'api', url: api.url }],
    limits: [{ name: 'roomy', key: 'ip', rate: '100/s', burst: 100 }],
    limits_store: { type: 'redis', url: redis.url, on_error: 'deny', timeout: '500ms' },
    routes: [{ id: 'r', path: '/*', upstream: 'api', public: true, limits: ['roomy'] }],
  })
}, 30_000)

afterAll(async () => {
  await gw?.close()
  await api?.close()
  await redis?.stop()
})

async function status(): Promise<number> {
  const res = await request(`${gw.url}/x`)
  await res.body.dump()
  return res.statusCode
}

async function limitsStoreCheck(): Promise<string> {
  const res = await request(`${gw.adminUrl}/readyz`)
  return ((await res.body.json()) as { checks: Record<string, string> }).checks.limits_store as string
}

it('/readyz says the store refuses checks while it does, and ready once one is answered', async () => {
  expect(await status()).toBe(200)
  expect(await limitsStoreCheck()).toBe('ready')
  const admin = new Redis(redis.url, { maxRetriesPerRequest: 0 })
  try {
    await admin.config('SET', 'maxmemory-policy', 'noeviction')
    await admin.config('SET', 'maxmemory', '1')
    expect(await status()).toBe(503)
    expect(await limitsStoreCheck()).toMatch(/^ready, but refusing checks: OOM /)
    await admin.config('SET', 'maxmemory', '0')
  } finally {
    admin.disconnect()
  }
  expect(await status()).toBe(200)
  expect(await limitsStoreCheck()).toBe('ready')
})
