// Throttling as clients see it: 429s with Retry-After, RateLimit headers on every response of a
// limited route, each key type, several limits per route, upstream protection, and the Redis
// store shared by three gateways and surviving Redis going away.
import { setTimeout as sleep } from 'node:timers/promises'
import { fileURLToPath } from 'node:url'
import { Redis } from 'ioredis'
import { request } from 'undici'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { allowAnyCaller, startTestGateway, type TestGateway } from '../helpers/gateway.ts'
import { AUDIENCE, startIdentityProvider, type TestIdentityProvider } from '../helpers/identity-provider.ts'
import { rawRequest } from '../helpers/raw.ts'
import { startRedis, uniquePrefix } from '../helpers/redis.ts'
import { startUpstream, type TestUpstream } from '../helpers/upstream.ts'
import { waitFor } from '../helpers/wait.ts'
import { closeAfterEach } from '../helpers/lifecycle.ts'

let upstream: TestUpstream
let idp: TestIdentityProvider
const closeLater = closeAfterEach()

beforeAll(async () => {
  upstream = await startUpstream((req, res) => {
    if (req.url?.startsWith('/missing')) {
      res.writeHead(404)
      return void res.end('nope')
    }
    if (req.url?.startsWith('/own-limits')) {
      // An upstream with RateLimit fields of its own: on a limited route the gateway's are the answer's.
      res.writeHead(200, { 'ratelimit-policy': '"upstream";q=99;w=1', ratelimit: '"upstream";r=98;t=1' })
      return void res.end('ok')
    }
    res.end('ok')
  })
  idp = await startIdentityProvider()
})
afterAll(async () => {
  await upstream.close()
  await idp.stop()
})

const LIMITS = [
  { name: 'per-client', key: 'header:X-Client', rate: '1/m', burst: 3 },
  { name: 'per-ip', key: 'ip', rate: '1/m', burst: 2 },
  { name: 'per-route', key: 'route', rate: '1/m', burst: 2 },
  { name: 'per-principal', key: 'principal', rate: '1/m', burst: 2 },
  { name: 'per-role', key: 'role', rate: '1/m', burst: 2 },
  { name: 'per-tenant', key: 'claim:tenant', rate: '1/m', burst: 2 },
  { name: 'three-a-minute', key: 'header:X-Client', quota: '3/m' },
  { name: 'three-a-day', key: 'header:X-Client', quota: '3/d' },
  { name: 'tight', key: 'header:X-Client', rate: '1/m', burst: 1 },
  { name: 'loose', key: 'header:X-Client', rate: '1/m', burst: 5 },
  { name: 'hourly', key: 'header:X-Client', rate: '5/h', burst: 1 },
]

async function gatewayWith(routes: object[], extra: Record<string, unknown> = {}): Promise<TestGateway> {
  const gw = await startTestGateway({
    server: { trusted_proxies: ['127.0.0.2/32'] },
    issuers: [{ name: 'corp', issuer: idp.issuer, audiences: [AUDIENCE] }],
    ...allowAnyCaller(['corp']),
    upstreams: [{ name: 'api', url: upstream.url }],
    limits: LIMITS,
    routes,
    ...extra,
  })
  closeLater(() => gw.close())
  return gw
}

async function hit(gw: TestGateway, path: string, headers: Record<string, string> = {}) {
  const res = await request(`${gw.url}${path}`, { headers })
  const text = await res.body.text()
  return { status: res.statusCode, headers: res.headers, body: text.startsWith('{') ? (JSON.parse(text) as Record<string, unknown>) : {} }
}

async function hits(gw: TestGateway, count: number, path: string, headers: () => Record<string, string> = () => ({})) {
  const out = []
  for (let i = 0; i < count; i++) out.push(await hit(gw, path, headers()))
  return out
}

async function statuses(gw: TestGateway, count: number, path: string, headers: () => Record<string, string>): Promise<number[]> {
  return (await hits(gw, count, path, headers)).map((r) => r.status)
}

describe('a rate limit', () => {
  it('admits the burst, then 429 rate_limited with Retry-After, naming the limit', async () => {
    const gw = await gatewayWith([{ id: 'r', path: '/r/*', upstream: 'api', public: true, limits: ['per-client'] }])
    const results = await hits(gw, 4, '/r/x', () => ({ 'x-client': 'bi-tool' }))
    expect(results.map((r) => r.status)).toEqual([200, 200, 200, 429])
    const refused = results[3]!
    expect(refused.body).toMatchObject({ code: 'rate_limited', status: 429 })
    expect(String(refused.body.detail)).toContain('Limit "per-client"')
    expect(Number(refused.headers['retry-after'])).toBeGreaterThanOrEqual(1)
    expect(Number(refused.headers['retry-after'])).toBeLessThanOrEqual(60)
  })

  it('says a slow rate in its own unit: 5/h is not "0 requests/s"', async () => {
    const gw = await gatewayWith([{ id: 'r', path: '/r/*', upstream: 'api', public: true, limits: ['hourly', 'tight'] }])
    const [, hourly] = await hits(gw, 2, '/r/x', () => ({ 'x-client': 'slow' }))
    expect(hourly?.body.detail).toBe('Limit "hourly" allows 5 requests per hour with a burst of 1; retry in 720s.')
    const gw2 = await gatewayWith([{ id: 'r', path: '/r/*', upstream: 'api', public: true, limits: ['tight'] }])
    const [, tight] = await hits(gw2, 2, '/r/x', () => ({ 'x-client': 'slow' }))
    expect(tight?.body.detail).toBe('Limit "tight" allows 1 request per minute with a burst of 1; retry in 60s.')
  })

  it('sends RateLimit-Policy and RateLimit on every response of the route, upstream errors included', async () => {
    const gw = await gatewayWith([{ id: 'r', path: '/*', upstream: 'api', public: true, limits: ['per-client'] }])
    const first = await hit(gw, '/x', { 'x-client': 'a' })
    expect(first.headers['ratelimit-policy']).toBe('"per-client";q=3;w=180')
    expect(first.headers.ratelimit).toBe('"per-client";r=2;t=60')
    const missing = await hit(gw, '/missing', { 'x-client': 'a' })
    expect(missing.status).toBe(404)
    expect(missing.headers.ratelimit).toBe('"per-client";r=1;t=120')
    const own = await hit(gw, '/own-limits', { 'x-client': 'a' })
    expect(own.headers['ratelimit-policy']).toBe('"per-client";q=3;w=180')
    expect(own.headers.ratelimit).toBe('"per-client";r=0;t=180')
    const refused = await hit(gw, '/x', { 'x-client': 'a' })
    expect(refused.status).toBe(429)
    expect(refused.headers['ratelimit-policy']).toBe('"per-client";q=3;w=180')
    expect(refused.headers.ratelimit).toMatch(/^"per-client";r=0;t=\d+$/)
  })

  it('sends the gateway\'s over a function\'s own RateLimit fields', async () => {
    const gw = await gatewayWith(
      [{ id: 'fn', path: '/fn', function: 'own', public: true, limits: ['per-client'] }],
      { functions: [{ name: 'own', module: fileURLToPath(new URL('../fixtures/functions/own-ratelimit.ts', import.meta.url)), concurrency: 1 }] },
    )
    const answered = await hit(gw, '/fn', { 'x-client': 'c' })
    expect(answered.status).toBe(200)
    expect(answered.headers['ratelimit-policy']).toBe('"per-client";q=3;w=180')
    expect(answered.headers.ratelimit).toBe('"per-client";r=2;t=60')
  })

  it('sends them on the gateway\'s own answer when the upstream cannot be reached (502)', async () => {
    const gw = await gatewayWith(
      [{ id: 'down', path: '/*', upstream: 'down', public: true, limits: ['per-client'] }],
      { upstreams: [{ name: 'api', url: upstream.url }, { name: 'down', url: 'http://127.0.0.1:9' }] },
    )
    const unreachable = await hit(gw, '/x', { 'x-client': 'b' })
    expect(unreachable.status).toBe(502)
    expect(unreachable.body.code).toBe('upstream_unavailable')
    expect(unreachable.headers['ratelimit-policy']).toBe('"per-client";q=3;w=180')
    expect(unreachable.headers.ratelimit).toBe('"per-client";r=2;t=60')
  })

  it('is not applied to routes that do not name it', async () => {
    const gw = await gatewayWith([{ id: 'free', path: '/*', upstream: 'api', public: true }])
    expect(await statuses(gw, 6, '/x', () => ({ 'x-client': 'a' }))).toEqual([200, 200, 200, 200, 200, 200])
    expect((await hit(gw, '/x')).headers).not.toHaveProperty('ratelimit')
  })
})

describe('a quota', () => {
  it('refuses with 429 quota_exceeded until the calendar window rolls over', async () => {
    const gw = await gatewayWith([{ id: 'q', path: '/*', upstream: 'api', public: true, limits: ['three-a-minute'] }])
    // The four requests must fall in one calendar minute: start them in a fresh one if this one is
    // about to end (waiting for the clock's own event, the minute rolling over).
    const msLeftInMinute = 60_000 - (Date.now() % 60_000)
    if (msLeftInMinute < 5_000) await new Promise((resolve) => setTimeout(resolve, msLeftInMinute + 20))
    const results = await hits(gw, 4, '/x', () => ({ 'x-client': 'nightly-job' }))
    expect(results.map((r) => r.status)).toEqual([200, 200, 200, 429])
    expect(results[3]?.body.code).toBe('quota_exceeded')
    // In the config's own unit, as a rate's refusal says it (it said "(3 per window)").
    expect(results[3]?.body.detail).toMatch(/^Quota "three-a-minute" \(3 requests per minute\) is used up; it resets at \d{4}-\d\d-\d\dT\d\d:\d\d:00\.000Z\.$/)
    const retryAfter = Number(results[3]?.headers['retry-after'])
    const secondsToNextMinute = 60 - new Date().getUTCSeconds()
    expect(Math.abs(retryAfter - secondsToNextMinute)).toBeLessThanOrEqual(1)
    expect(results[0]?.headers['ratelimit-policy']).toBe('"three-a-minute";q=3;w=60')
  })
})

describe('each key type', () => {
  it('header: one budget per header value', async () => {
    const gw = await gatewayWith([{ id: 'r', path: '/*', upstream: 'api', public: true, limits: ['per-client'] }])
    expect(await statuses(gw, 4, '/x', () => ({ 'x-client': 'a' }))).toEqual([200, 200, 200, 429])
    expect(await statuses(gw, 1, '/x', () => ({ 'x-client': 'b' }))).toEqual([200])
  })

  it('ip: a spoofed X-Forwarded-For from an untrusted peer does not buy a new budget', async () => {
    const gw = await gatewayWith([{ id: 'r', path: '/*', upstream: 'api', public: true, limits: ['per-ip'] }])
    let n = 0
    expect(await statuses(gw, 3, '/x', () => ({ 'x-forwarded-for': `203.0.113.${++n}` }))).toEqual([200, 200, 429])
  })

  it('ip: behind a trusted proxy, each real client has its own budget', async () => {
    const gw = await gatewayWith([{ id: 'r', path: '/*', upstream: 'api', public: true, limits: ['per-ip'] }])
    const port = Number(new URL(gw.url).port)
    const via = async (client: string) => (await rawRequest(port, `GET /x HTTP/1.1\r\nHost: gw\r\nX-Forwarded-For: ${client}\r\n\r\n`, { localAddress: '127.0.0.2' })).status
    expect([await via('198.51.100.1'), await via('198.51.100.1'), await via('198.51.100.1')]).toEqual([200, 200, 429])
    expect(await via('198.51.100.2')).toBe(200)
  })

  it('route: every caller of the route shares one budget', async () => {
    const gw = await gatewayWith([
      { id: 'shared', path: '/shared', upstream: 'api', public: true, limits: ['per-route'] },
      { id: 'other', path: '/other', upstream: 'api', public: true, limits: ['per-route'] },
    ])
    let n = 0
    expect(await statuses(gw, 3, '/shared', () => ({ 'x-client': String(++n) }))).toEqual([200, 200, 429])
    expect(await statuses(gw, 1, '/other', () => ({}))).toEqual([200])
  })

  it('principal, role and claim: by the verified identity', async () => {
    const gw = await gatewayWith([
      { id: 'p', path: '/p', upstream: 'api', limits: ['per-principal'] },
      { id: 'r', path: '/r', upstream: 'api', limits: ['per-role'] },
      { id: 't', path: '/t', upstream: 'api', limits: ['per-tenant'] },
    ])
    await waitFor(() => gw.state.runtime.issuerKeys.get('corp')?.state === 'ready', 'keys')
    const looker = { authorization: `Bearer ${await idp.token('looker-reports')}` }
    const agent = { authorization: `Bearer ${await idp.token('analytics-agent')}` }
    // principal: each service account has its own budget
    expect(await statuses(gw, 3, '/p', () => looker)).toEqual([200, 200, 429])
    expect(await statuses(gw, 1, '/p', () => agent)).toEqual([200])
    // role: both hold the same role (any-caller), so they share one budget
    expect([...(await statuses(gw, 2, '/r', () => looker)), ...(await statuses(gw, 1, '/r', () => agent))]).toEqual([200, 200, 429])
    // claim: both carry tenant acme
    expect([...(await statuses(gw, 1, '/t', () => looker)), ...(await statuses(gw, 2, '/t', () => agent))]).toEqual([200, 200, 429])
  })
})

describe('several limits on a route', () => {
  it('the first exhausted one refuses, and the others are not charged for the refused request', async () => {
    const gw = await gatewayWith([{ id: 'r', path: '/*', upstream: 'api', public: true, limits: ['loose', 'tight'] }])
    const first = await hit(gw, '/x', { 'x-client': 'c' })
    expect(first.headers['ratelimit-policy']).toBe('"loose";q=5;w=300, "tight";q=1;w=60')
    const second = await hit(gw, '/x', { 'x-client': 'c' })
    expect(second.status).toBe(429)
    expect(String(second.body.detail)).toContain('"tight"')
    const third = await hit(gw, '/x', { 'x-client': 'c' })
    expect(third.status).toBe(429)
    // loose: 5 - 1 (the admitted request) = 4; the refusals took nothing, and say so
    expect(String(third.headers.ratelimit)).toMatch(/^"loose";r=4;t=\d+, "tight";r=0;t=\d+$/)
  })
})

describe('upstream protection', () => {
  it('max_concurrent bounds an upstream however many principals stay within their own limits', async () => {
    const release: Array<() => void> = []
    const slow = await startUpstream((_req, res) => new Promise<void>((resolve) => release.push(() => { res.end('ok'); resolve() })))
    closeLater(() => slow.close())
    const gw = await gatewayWith([{ id: 'r', path: '/*', upstream: 'slow', public: true, limits: ['per-client'] }], {
      upstreams: [{ name: 'api', url: upstream.url }, { name: 'slow', url: slow.url, max_concurrent: 3 }],
    })
    const inFlight = [1, 2, 3].map((i) => request(`${gw.url}/x`, { headers: { 'x-client': `principal-${i}` } }))
    await waitFor(() => release.length === 3, 'three requests at the upstream')
    const fourth = await hit(gw, '/x', { 'x-client': 'principal-4' })
    expect(fourth.status).toBe(503)
    expect(fourth.body.code).toBe('upstream_saturated')
    for (const r of release) r()
    expect((await Promise.all(inFlight)).map((r) => r.statusCode)).toEqual([200, 200, 200])
  })
})

describe('the Redis store', () => {
  it('three gateway instances share one budget, atomically', async () => {
    const limits_store = { type: 'redis', url: 'redis://127.0.0.1:6379', prefix: uniquePrefix('shared') }
    const gateways = await Promise.all([0, 1, 2].map(() => gatewayWith([{ id: 'r', path: '/*', upstream: 'api', public: true, limits: ['per-client'] }], { limits_store })))
    await Promise.all(gateways.map((gw) => waitFor(() => gw.state.runtime.limiter.store.status() === 'ready', 'redis')))
    // 30 concurrent requests spread over the three instances, one key: exactly the burst passes.
    const results = await Promise.all(Array.from({ length: 30 }, (_, i) => hit(gateways[i % 3]!, '/x', { 'x-client': 'shared-key' })))
    expect(results.filter((r) => r.status === 200)).toHaveLength(3)
    expect(results.filter((r) => r.status === 429)).toHaveLength(27)
    expect(results.find((r) => r.status === 429)?.headers['retry-after']).toBeDefined()
  })

  it('keeps a quota across instances too', async () => {
    const limits_store = { type: 'redis', url: 'redis://127.0.0.1:6379', prefix: uniquePrefix('quota') }
    const [a, b] = await Promise.all([0, 1].map(() => gatewayWith([{ id: 'q', path: '/*', upstream: 'api', public: true, limits: ['three-a-minute'] }], { limits_store })))
    await waitFor(() => a!.state.runtime.limiter.store.status() === 'ready' && b!.state.runtime.limiter.store.status() === 'ready', 'redis')
    const codes = [await hit(a!, '/x', { 'x-client': 'q' }), await hit(b!, '/x', { 'x-client': 'q' }), await hit(a!, '/x', { 'x-client': 'q' }), await hit(b!, '/x', { 'x-client': 'q' })]
    expect(codes.map((r) => r.status)).toEqual([200, 200, 200, 429])
    expect(codes[3]?.body.code).toBe('quota_exceeded')
  })

  // Found by an adversarial probe: during a rolling change of a limit (burst 5 on one instance, 20 on
  // another), the smaller one capped the stored arrival time at its own empty bucket on each refusal,
  // wiping what the other had counted: a caller alternating between them got 80 requests in seconds
  // where either config allows 20 at most.
  it('instances running different bursts of one limit (a rolling change) read the shared bucket as the same share of their own', async () => {
    const limits_store = { type: 'redis', url: 'redis://127.0.0.1:6379', prefix: uniquePrefix('rolling') }
    const limit = (burst: number) => ({ limits: [{ name: 'rolling', key: 'header:X-Client', rate: '1/m', burst }], limits_store })
    const route = [{ id: 'r', path: '/*', upstream: 'api', public: true, limits: ['rolling'] }]
    const [small, large] = await Promise.all([gatewayWith(route, limit(2)), gatewayWith(route, limit(8))])
    await waitFor(() => small!.state.runtime.limiter.store.status() === 'ready' && large!.state.runtime.limiter.store.status() === 'ready', 'redis')
    const client = (name: string) => () => ({ 'x-client': name })

    // The larger bucket spent, then one request to the smaller between each round: never more than the burst of 8.
    const allowed: number[] = [...await statuses(large!, 8, '/x', client('alternating'))]
    for (let round = 0; round < 3; round++) {
      expect((await hit(small!, '/x', client('alternating')())).status).toBe(429)
      allowed.push(...await statuses(large!, 8, '/x', client('alternating')))
    }
    expect(allowed.filter((status) => status === 200)).toHaveLength(8)

    // The smaller bucket spent is the larger one spent too, and a quarter of the larger a quarter of the smaller.
    expect(await statuses(small!, 3, '/x', client('small-first'))).toEqual([200, 200, 429])
    const refused = await hit(large!, '/x', client('small-first')())
    expect(refused.status).toBe(429)
    // t=480 when asked at once; each second the requests before it took (a loaded CI) takes one off.
    const [, t] = /^"rolling";r=0;t=(\d+)$/.exec(String(refused.headers.ratelimit)) ?? []
    expect(Number(t)).toBeGreaterThan(470)
    expect(Number(t)).toBeLessThanOrEqual(480)
    expect(await statuses(large!, 2, '/x', client('large-first'))).toEqual([200, 200])
    // A quarter of 2 minutes spent: one more request, arriving 30 s later than an empty bucket's.
    const quarter = await hit(small!, '/x', client('large-first')())
    expect({ status: quarter.status, ratelimit: quarter.headers.ratelimit }).toEqual({ status: 200, ratelimit: expect.stringMatching(/^"rolling";r=0;t=(8\d|90)$/) })
  })

  it.each(['allow', 'deny'] as const)('a take that Redis runs after the deadline (on_error: %s) is given back: the caller is not charged for it', async (onError) => {
    const redis = await startRedis()
    closeLater(() => redis.stop())
    const prefix = uniquePrefix('late')
    const gw = await gatewayWith([{ id: 'q', path: '/*', upstream: 'api', public: true, limits: ['three-a-day', 'per-client'] }], {
      limits_store: { type: 'redis', url: redis.url, on_error: onError, prefix, timeout: '150ms' },
    })
    await waitFor(() => gw.state.runtime.limiter.store.status() === 'ready', 'redis')
    expect((await hit(gw, '/x', { 'x-client': 'late' })).headers.ratelimit).toMatch(/^"three-a-day";r=2;t=\d+, "per-client";r=2;t=60$/)

    // A paused Redis holds the next take and runs it when the pause ends, long after the gateway gave up on it.
    const admin = new Redis(redis.url)
    closeLater(async () => void admin.disconnect())
    await admin.call('CLIENT', 'PAUSE', '600', 'ALL')
    const during = await hit(gw, '/x', { 'x-client': 'late' })
    if (onError === 'allow') {
      expect(during.status).toBe(200)
      expect(during.headers).not.toHaveProperty('ratelimit')
    } else {
      expect(during.status).toBe(503)
      expect(during.body.code).toBe('limits_unavailable')
    }
    // The late take ran, then its refund: the quota's window holds the first request only, the rate's time one interval.
    const quotaKey = async () => (await admin.keys(`${prefix}*@*`))[0]
    await waitFor(async () => {
      const key = await quotaKey()
      return key !== undefined && (await admin.get(key)) === '1'
    }, 'the late take given back', 5_000)

    const after = await hit(gw, '/x', { 'x-client': 'late' })
    expect(after.status).toBe(200)
    expect(after.headers.ratelimit).toMatch(/^"three-a-day";r=1;t=\d+, "per-client";r=1;t=120$/)
  })

  it.each(['allow', 'deny'] as const)('Redis stopped mid-test with on_error: %s, then back: the gateway recovers by itself', async (onError) => {
    const redis = await startRedis()
    closeLater(() => redis.stop())
    const gw = await gatewayWith([{ id: 'r', path: '/*', upstream: 'api', public: true, limits: ['per-client'] }], {
      limits_store: { type: 'redis', url: redis.url, on_error: onError, prefix: uniquePrefix('outage'), timeout: '200ms' },
    })
    await waitFor(() => gw.state.runtime.limiter.store.status() === 'ready', 'redis')
    expect(await statuses(gw, 4, '/x', () => ({ 'x-client': 'k' }))).toEqual([200, 200, 200, 429])

    await redis.stop()
    const failures = async () => {
      const line = new RegExp(`^bouncer_limits_store_failures_total\\{on_error="${onError}"\\} (\\d+)$`, 'm').exec(await (await request(`${gw.adminUrl}/metrics`)).body.text())
      expect(line, 'bouncer_limits_store_failures_total in /metrics').not.toBeNull()
      return Number(line?.[1])
    }
    const before = await failures()
    const during = await hit(gw, '/x', { 'x-client': 'k' })
    // Counted: with allow, the only other trace of an unmetered request is a log line every 10 s.
    expect(await failures()).toBe(before + 1)
    if (onError === 'allow') {
      expect(during.status).toBe(200)
      expect(during.headers).not.toHaveProperty('ratelimit')
    } else {
      expect(during.status).toBe(503)
      expect(during.body.code).toBe('limits_unavailable')
      expect(during.headers['retry-after']).toBe('1')
    }

    await redis.start() // an empty Redis: the budget starts afresh
    await waitFor(async () => (await hit(gw, '/x', { 'x-client': 'fresh' })).headers.ratelimit !== undefined, 'reconnection', 15_000)
    expect(await statuses(gw, 3, '/x', () => ({ 'x-client': 'fresh' }))).toEqual([200, 200, 429])
    await sleep(10)
  })
})
