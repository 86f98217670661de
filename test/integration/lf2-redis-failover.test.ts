// Found by the limits probe (limfa2): a Redis limits store behind an address a failover moves (a
// managed Redis's primary endpoint, a DNS name, a VIP). Redis keeps its clients connected when it
// is demoted to a replica, and answers every write READONLY: the gateway's connection to the old
// primary stayed up and every limited request met on_error (503 limits_unavailable with deny) for
// as long as that connection lived, while the new primary at the same address was fine. A READONLY
// answer now drops the connection and makes it again, to wherever the address leads; where that is
// a replica still, /readyz says so (not "ready") and the log does not say "connected" each time.
import { Redis } from 'ioredis'
import { request } from 'undici'
import { afterAll, beforeAll, expect, it } from 'vitest'
import { startFreezingRelay, type FreezingRelay } from '../helpers/faults.ts'
import { startTestGateway, type TestGateway } from '../helpers/gateway.ts'
import { startRedis, type TestRedis } from '../helpers/redis.ts'
import { startUpstream, type TestUpstream } from '../helpers/upstream.ts'
import { waitFor } from '../helpers/wait.ts'

let first: TestRedis
let second: TestRedis
let relay: FreezingRelay
let api: TestUpstream
let gw: TestGateway

beforeAll(async () => {
  first = await startRedis()
  second = await startRedis()
  relay = await startFreezingRelay(first.port)
  api = await startUpstream()
  gw = await startTestGateway({
    upstreams: [{ name: 'api', url: api.url }],
    limits: [{ name: 'roomy', key: 'ip', rate: '100/s', burst: 100 }],
    limits_store: { type: 'redis', url: `redis://127.0.0.1:${relay.port}`, on_error: 'deny', timeout: '500ms' },
    routes: [{ id: 'r', path: '/*', upstream: 'api', public: true, limits: ['roomy'] }],
  })
}, 30_000)

afterAll(async () => {
  await gw?.close()
  await api?.close()
  relay?.close()
  await first?.stop()
  await second?.stop()
})

async function status(): Promise<number> {
  const res = await request(`${gw.url}/x`)
  await res.body.dump()
  return res.statusCode
}

it('limits are checked again once the address leads to the new primary', async () => {
  expect(await status()).toBe(200)
  // The failover: the old primary becomes a replica of the new one (its clients stay connected), and the address moves.
  const admin = new Redis(first.url, { maxRetriesPerRequest: 0 })
  try {
    await admin.call('REPLICAOF', '127.0.0.1', String(second.port))
  } finally {
    admin.disconnect()
  }
  relay.retarget(second.port)
  const seen: number[] = []
  await waitFor(async () => {
    seen.push(await status())
    return seen.at(-1) === 200
  }, 'a limited request answered 200 after the failover', 5_000).catch(() => {})
  expect(seen.at(-1), `statuses after the failover: ${seen.join(' ')}`).toBe(200)
  // And the new primary counts them.
  const counted = new Redis(second.url, { maxRetriesPerRequest: 0 })
  try {
    expect((await counted.keys('bouncer:roomy|*')).length).toBe(1)
  } finally {
    counted.disconnect()
  }
  expect(await limitsStoreCheck(gw)).toBe('ready')
})

it('a store that stays a replica is said so, and its connections made again are not each logged', async () => {
  // `first` is the replica now; a gateway whose URL names it.
  const onReplica = await startTestGateway({
    upstreams: [{ name: 'api', url: api.url }],
    limits: [{ name: 'roomy', key: 'ip', rate: '100/s', burst: 100 }],
    limits_store: { type: 'redis', url: first.url, on_error: 'deny', timeout: '500ms' },
    routes: [{ id: 'r', path: '/*', upstream: 'api', public: true, limits: ['roomy'] }],
  })
  const replica = new Redis(first.url, { maxRetriesPerRequest: 0 })
  try {
    const connections = async () => Number(/total_connections_received:(\d+)/.exec(await replica.info('stats'))?.[1])
    const before = await connections()
    await waitFor(async () => {
      const res = await request(`${onReplica.url}/x`)
      await res.body.dump()
      expect(res.statusCode).toBe(503)
      return (await connections()) >= before + 3
    }, 'three connections made again')
    expect(await limitsStoreCheck(onReplica)).toMatch(/READONLY/)
    expect(onReplica.logs.filter((line) => line.includes('limits store connected')).length).toBeLessThanOrEqual(1)
  } finally {
    replica.disconnect()
    await onReplica.close()
  }
})

async function limitsStoreCheck(gateway: TestGateway): Promise<string> {
  const res = await request(`${gateway.adminUrl}/readyz`)
  return ((await res.body.json()) as { checks: Record<string, string> }).checks.limits_store as string
}
