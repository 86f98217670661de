// Limits: what the memory store adds per request, how many checks/s the Redis store sustains from
// one process, and how accurately three gateway processes sharing Redis hold one key to its rate.
import { Pool } from 'undici'
import { compileRouteLimits, enforceLimits, type LimitedRequest, type Limiter } from '../src/limits/index.ts'
import { createMemoryStore } from '../src/limits/stores/memory.ts'
import { createRedisStore } from '../src/limits/stores/redis.ts'
import { loadConfigText } from '../src/config/index.ts'
import { createLogger } from '../src/telemetry/logger.ts'
import { startBouncer, startUpstream } from './cases.ts'

const LIMITS_YAML = `
upstreams: [{ name: a, url: "http://127.0.0.1:9" }]
limits:
  - { name: per-principal, key: principal, rate: 100000/s, burst: 100000 }
  - { name: daily-quota, key: principal, quota: 1000000000/d }
routes: [{ id: r, path: /r, upstream: a, limits: [per-principal, daily-quota] }]
`

function caller(principal: number): LimitedRequest {
  return {
    identity: { issuerName: 'corp', iss: 'https://corp', sub: `svc-${principal}`, clientId: null, claims: {}, expiresAt: 0 },
    roles: ['reports'],
    clientIp: '10.0.0.1',
    route: { id: 'r' },
    headers: null,
  }
}

/** The whole limit stage (keys, store, the verdict and its RateLimit values) with two limits, over 1,000 principals. */
export async function benchMemoryLimits(quick: boolean): Promise<{ nsPerRequest: number }> {
  const config = loadConfigText(LIMITS_YAML, 'bench.yaml').config!
  const limits = compileRouteLimits(['per-principal', 'daily-quota'], config.limits)!
  const limiter: Limiter = { store: createMemoryStore({ maxKeys: 100_000 }), onError: 'deny', logger: createLogger({ level: 'silent' }) }
  const callers = Array.from({ length: 1_000 }, (_, i) => caller(i))
  const n = quick ? 100_000 : 1_000_000
  // The memory store answers synchronously: enforceLimits returns no promise to wait for.
  for (let i = 0; i < 100_000; i++) void enforceLimits(limiter, callers[i % 1_000] as LimitedRequest, limits)
  const started = performance.now()
  for (let i = 0; i < n; i++) void enforceLimits(limiter, callers[i % 1_000] as LimitedRequest, limits)
  return { nsPerRequest: ((performance.now() - started) * 1e6) / n }
}

/** Checks per second through the Redis store from one process, 64 in flight (like 64 requests). */
export async function benchRedisStore(seconds: number): Promise<{ checksPerSec: number }> {
  const store = createRedisStore({ url: 'redis://127.0.0.1:6379', prefix: `bouncer-bench:${process.pid}:`, timeoutMs: 1_000, logger: createLogger({ level: 'silent' }) })
  while (store.status() !== 'ready') await new Promise((r) => setTimeout(r, 10))
  const checks = (i: number) => [{ key: `per-principal|p:svc-${i % 1_000}`, rate: { intervalMs: 0.01, burst: 1_000_000 }, quota: null }]
  for (let i = 0; i < 2_000; i++) await store.take(checks(i))
  let done = 0
  const deadline = performance.now() + seconds * 1000
  const worker = async (w: number) => {
    for (let i = w; performance.now() < deadline; i += 64) {
      await store.take(checks(i))
      done++
    }
  }
  const started = performance.now()
  await Promise.all(Array.from({ length: 64 }, (_, w) => worker(w)))
  const elapsed = (performance.now() - started) / 1000
  await store.close()
  return { checksPerSec: done / elapsed }
}

export interface AccuracyResult {
  seconds: number
  rate: number
  burst: number
  expected: number
  admitted: number
  refused: number
  errorPercent: number
}

/** Three `bouncer serve` processes, one Redis, one key, more load than the rate: how many pass? */
export async function benchRedisAccuracy(seconds: number): Promise<AccuracyResult> {
  const rate = 200
  const burst = 100
  const upstream = await startUpstream()
  const config = {
    audit: { sinks: [] },
    upstreams: [{ name: 'api', url: `http://127.0.0.1:${upstream.port}` }],
    limits: [{ name: 'shared', key: 'header:X-Client', rate: `${rate}/s`, burst }],
    limits_store: { type: 'redis', url: 'redis://127.0.0.1:6379', prefix: `bouncer-accuracy:${process.pid}:${Date.now()}:` },
    routes: [{ id: 'r', path: '/*', upstream: 'api', public: true, limits: ['shared'] }],
  }
  const gateways = await Promise.all([0, 1, 2].map(() => startBouncer(config)))
  const pools = gateways.map((g) => new Pool(g.url, { connections: 16 }))
  let admitted = 0
  let refused = 0
  // Warm each gateway's Redis connection on another key first.
  await Promise.all(pools.map(async (pool) => (await pool.request({ path: '/', method: 'GET', headers: { 'x-client': 'warm-up' } })).body.dump()))
  const deadline = performance.now() + seconds * 1000
  const worker = async (pool: Pool) => {
    while (performance.now() < deadline) {
      const res = await pool.request({ path: '/', method: 'GET', headers: { 'x-client': 'the-one-key' } })
      await res.body.dump()
      if (res.statusCode === 200) admitted++
      else if (res.statusCode === 429) refused++
    }
  }
  await Promise.all(pools.flatMap((pool) => Array.from({ length: 8 }, () => worker(pool))))
  await Promise.all(pools.map((p) => p.close()))
  await Promise.all(gateways.map((g) => g.stop()))
  await upstream.stop()
  const expected = rate * seconds + burst
  return { seconds, rate, burst, expected, admitted, refused, errorPercent: ((admitted - expected) / expected) * 100 }
}
