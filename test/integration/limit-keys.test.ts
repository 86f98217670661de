// Limit keys under attack (issue 22, points 5 and 9), through a real gateway and upstream:
// - a flood of new keys (header values, forwarded addresses) does not reset a principal's spent
//   quota: past limits_store.max_keys the new keys get 503 limits_unavailable, counted and logged;
// - an IPv6 client is one caller per /64 (ip_prefix_v6), an IPv4-mapped address is its IPv4;
// - no client-chosen header value, claim type or issuer name shares another caller's budget;
// - the same keys in the Redis store, and a warning when that Redis could evict live keys.
import { request } from 'undici'
import { Redis } from 'ioredis'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { allowAnyCaller, startTestGateway, type TestGateway } from '../helpers/gateway.ts'
import { AUDIENCE, startIdentityProvider, type TestIdentityProvider } from '../helpers/identity-provider.ts'
import { rawRequest } from '../helpers/raw.ts'
import { startRedis, uniquePrefix } from '../helpers/redis.ts'
import { startUpstream, type TestUpstream } from '../helpers/upstream.ts'
import { waitFor } from '../helpers/wait.ts'
import { closeAfterEach } from '../helpers/lifecycle.ts'

let upstream: TestUpstream
let corp: TestIdentityProvider
let corpX: TestIdentityProvider
const closeLater = closeAfterEach()

beforeAll(async () => {
  upstream = await startUpstream((_req, res) => void res.end('ok'))
  corp = await startIdentityProvider()
  corpX = await startIdentityProvider()
})
afterAll(async () => {
  await upstream.close()
  await corp.stop()
  await corpX.stop()
})

const LIMITS = [
  { name: 'daily', key: 'principal', quota: '3/d' },
  { name: 'per-client', key: 'header:X-Client', rate: '1/m', burst: 5 },
  { name: 'one-per-client', key: 'header:X-Client', rate: '1/m', burst: 1 },
  { name: 'per-ip', key: 'ip', rate: '1/m', burst: 2 },
  { name: 'per-address', key: 'ip', rate: '1/m', burst: 1, ip_prefix_v6: 128 },
  { name: 'per-tenant', key: 'claim:tenant', rate: '1/m', burst: 1 },
  { name: 'per-principal', key: 'principal', rate: '1/m', burst: 1 },
]

const ROUTES = [
  { id: 'quota', path: '/quota', upstream: 'api', limits: ['daily'] },
  { id: 'by-client', path: '/by-client', upstream: 'api', public: true, limits: ['per-client'] },
  { id: 'one-per-client', path: '/one-per-client', upstream: 'api', public: true, limits: ['one-per-client'] },
  { id: 'by-ip', path: '/by-ip', upstream: 'api', public: true, limits: ['per-ip'] },
  { id: 'by-address', path: '/by-address', upstream: 'api', public: true, limits: ['per-address'] },
  { id: 'by-tenant', path: '/by-tenant', upstream: 'api', limits: ['per-tenant'] },
  { id: 'by-principal', path: '/by-principal', upstream: 'api', limits: ['per-principal'] },
]

async function gatewayWith(limitsStore: Record<string, unknown>): Promise<TestGateway> {
  const gw = await startTestGateway({
    server: { trusted_proxies: ['127.0.0.2/32'] },
    issuers: [
      { name: 'corp', issuer: corp.issuer, audiences: [AUDIENCE] },
      { name: 'corp:x', issuer: corpX.issuer, audiences: [AUDIENCE] },
    ],
    ...allowAnyCaller(['corp', 'corp:x']),
    upstreams: [{ name: 'api', url: upstream.url }],
    limits: LIMITS,
    routes: ROUTES,
    limits_store: limitsStore,
  })
  closeLater(() => gw.close())
  await waitFor(() => [...gw.state.runtime.issuerKeys.values()].every((k) => k.state === 'ready'), 'issuer keys')
  if (limitsStore.type === 'redis') await waitFor(() => gw.state.runtime.limiter.store.status() === 'ready', 'redis')
  return gw
}

async function hit(gw: TestGateway, path: string, headers: Record<string, string> = {}) {
  const res = await request(`${gw.url}${path}`, { headers })
  const text = await res.body.text()
  return { status: res.statusCode, headers: res.headers, body: text.startsWith('{') ? (JSON.parse(text) as Record<string, unknown>) : {} }
}

/** A request as a trusted proxy (127.0.0.2) forwards it for `client`. */
async function forwardedFor(gw: TestGateway, path: string, client: string): Promise<number> {
  const port = Number(new URL(gw.url).port)
  return (await rawRequest(port, `GET ${path} HTTP/1.1\r\nHost: gw\r\nX-Forwarded-For: ${client}\r\n\r\n`, { localAddress: '127.0.0.2' })).status
}

const bearer = (token: string) => ({ authorization: `Bearer ${token}` })

async function spendDailyQuota(gw: TestGateway, token: string): Promise<void> {
  const spent = []
  for (let i = 0; i < 4; i++) spent.push(await hit(gw, '/quota', bearer(token)))
  expect(spent.map((r) => r.status)).toEqual([200, 200, 200, 429])
  expect(spent[3]?.body.code).toBe('quota_exceeded')
}

async function metrics(gw: TestGateway): Promise<string> {
  return (await request(`${gw.adminUrl}/metrics`)).body.text()
}

describe('a flood of new keys against a full memory store (max_keys: 100)', () => {
  it('new X-Client values do not reset a spent daily quota: past max_keys they get 503 limits_unavailable', async () => {
    const gw = await gatewayWith({ type: 'memory', max_keys: 100 })
    const token = await corp.token('looker-reports')
    await spendDailyQuota(gw, token) // one key in the store

    const flood = []
    for (let i = 0; i < 120; i++) flood.push(await hit(gw, '/by-client', { 'x-client': `flood-${i}` }))
    expect(flood.slice(0, 99).every((r) => r.status === 200)).toBe(true)
    const refused = flood.slice(99)
    expect(refused.map((r) => r.status)).toEqual(Array(21).fill(503))
    expect(refused[0]?.body).toMatchObject({ code: 'limits_unavailable', status: 503 })
    expect(String(refused[0]?.body.detail)).toContain('max_keys')
    expect(refused[0]?.headers['retry-after']).toBe('1')
    expect(refused[0]?.headers).not.toHaveProperty('ratelimit') // nothing was counted

    const after = await hit(gw, '/quota', bearer(token))
    expect(after.status).toBe(429)
    expect(after.body.code).toBe('quota_exceeded')
    // Callers the store already holds keep their budgets; the store stays at its bound.
    expect((await hit(gw, '/by-client', { 'x-client': 'flood-3' })).status).toBe(200)
    expect(gw.state.runtime.limiter.store.status()).toBe('memory: 100 keys (max_keys reached: 21 requests refused for a new key)')

    await waitFor(async () => /^bouncer_rate_limited_total\{limit="per-client",code="limits_unavailable"\} 21$/m.test(await metrics(gw)), 'the refusals counted')
    const logged = gw.logs.filter((line) => line.includes('limits store full'))
    expect(logged).toHaveLength(1) // rate-limited: one line for the whole flood
    expect(JSON.parse(logged[0] as string)).toMatchObject({ level: 'warn', store: 'memory', max_keys: 100, refused: 1 })
  })

  it('addresses forwarded by a trusted proxy do not reset it either', async () => {
    const gw = await gatewayWith({ type: 'memory', max_keys: 100 })
    const token = await corp.token('analytics-agent')
    await spendDailyQuota(gw, token)
    const statuses = []
    for (let i = 0; i < 110; i++) statuses.push(await forwardedFor(gw, '/by-ip', `198.51.${100 + (i >> 8)}.${i & 255}`))
    expect(statuses.slice(0, 99).every((s) => s === 200)).toBe(true)
    expect(statuses.slice(99)).toEqual(Array(11).fill(503))
    expect((await hit(gw, '/quota', bearer(token))).body.code).toBe('quota_exceeded')
  })

  it('an IPv6 client rotating through its /64 is one caller: it is rate limited, and fills nothing', async () => {
    const gw = await gatewayWith({ type: 'memory', max_keys: 100 })
    const statuses = []
    for (let i = 1; i <= 110; i++) statuses.push(await forwardedFor(gw, '/by-ip', `2001:db8:1:2:${i.toString(16)}::${i.toString(16)}`))
    expect(statuses.slice(0, 2)).toEqual([200, 200])
    expect(statuses.slice(2).every((s) => s === 429)).toBe(true)
    expect(gw.state.runtime.limiter.store.status()).toBe('memory: 1 keys')
  })
})

describe('the address a limit counts by', () => {
  it('IPv6: one budget per /64 by default, and per address with ip_prefix_v6: 128', async () => {
    const gw = await gatewayWith({ type: 'memory' })
    expect([
      await forwardedFor(gw, '/by-ip', '2001:db8:1:2::1'),
      await forwardedFor(gw, '/by-ip', '2001:DB8:1:2:0:0:0:2'),
      await forwardedFor(gw, '/by-ip', '2001:db8:1:2:ffff:ffff:ffff:ffff'),
    ]).toEqual([200, 200, 429])
    expect(await forwardedFor(gw, '/by-ip', '2001:db8:1:3::1')).toBe(200)
    expect([
      await forwardedFor(gw, '/by-address', '2001:db8:1:2::1'),
      await forwardedFor(gw, '/by-address', '2001:db8:1:2::2'),
      await forwardedFor(gw, '/by-address', '2001:db8:1:2:0::1'),
    ]).toEqual([200, 200, 429])
  })

  it('an IPv4-mapped IPv6 address, in any spelling, is the IPv4 client', async () => {
    const gw = await gatewayWith({ type: 'memory' })
    expect([
      await forwardedFor(gw, '/by-address', '198.51.100.7'),
      await forwardedFor(gw, '/by-address', '::ffff:c633:6407'),
      await forwardedFor(gw, '/by-address', '::FFFF:198.51.100.7'),
    ]).toEqual([200, 429, 429])
  })
})

/** Each pair must land in two budgets (every limit here has a burst of 1). */
async function keysStayApart(gw: TestGateway): Promise<void> {
  // header: "(none)" is a value like any other; callers without the header share one budget
  expect((await hit(gw, '/one-per-client')).status).toBe(200)
  expect((await hit(gw, '/one-per-client', { 'x-client': '(none)' })).status).toBe(200)
  expect((await hit(gw, '/one-per-client', { 'x-client': '-' })).status).toBe(200)
  expect((await hit(gw, '/one-per-client')).status).toBe(429)

  // claim: the string "1" and the number 1; an array and its JSON text; "(none)" and no claim
  const tenant = async (value: unknown) => (await hit(gw, '/by-tenant', bearer(await corp.mint(value === undefined ? { sub: `t-${Math.random()}` } : { sub: `t-${Math.random()}`, tenant: value })))).status
  expect([await tenant('1'), await tenant(1)]).toEqual([200, 200])
  expect([await tenant(['a']), await tenant('["a"]')]).toEqual([200, 200])
  expect([await tenant(undefined), await tenant('(none)'), await tenant(null)]).toEqual([200, 200, 429])

  // principal: issuer "corp" with subject "x:svc" is not issuer "corp:x" with subject "svc"
  expect((await hit(gw, '/by-principal', bearer(await corp.mint({ sub: 'x:svc' })))).status).toBe(200)
  expect((await hit(gw, '/by-principal', bearer(await corpX.mint({ sub: 'svc' })))).status).toBe(200)
  expect((await hit(gw, '/by-principal', bearer(await corpX.mint({ sub: 'svc' })))).status).toBe(429)
}

describe('keys no client can collide', () => {
  it('memory store', async () => {
    await keysStayApart(await gatewayWith({ type: 'memory' }))
  })
})

describe('the Redis store', () => {
  it('keeps the same keys apart, counts IPv6 by /64, and stores typed keys', async () => {
    const prefix = uniquePrefix('limit-keys')
    const redis = new Redis('redis://127.0.0.1:6379')
    closeLater(async () => {
      const keys = await redis.keys(`${prefix}*`)
      if (keys.length > 0) await redis.del(...keys)
      redis.disconnect()
    })
    const gw = await gatewayWith({ type: 'redis', url: 'redis://127.0.0.1:6379', prefix })
    await keysStayApart(gw)
    expect([
      await forwardedFor(gw, '/by-ip', '2001:db8:9:9::1'),
      await forwardedFor(gw, '/by-ip', '2001:db8:9:9::2'),
      await forwardedFor(gw, '/by-ip', '2001:db8:9:9:1::3'),
    ]).toEqual([200, 200, 429])

    const keys = (await redis.keys(`${prefix}*`)).map((k) => k.slice(prefix.length)).sort()
    expect(keys).toEqual(expect.arrayContaining([
      'one-per-client|h:-',
      'one-per-client|h:s:(none)',
      'per-tenant|claim:s:1',
      'per-tenant|claim:j:1',
      'per-tenant|claim:-',
      'per-principal|p:4:corp:s:x:svc',
      'per-principal|p:6:corp:x:s:svc',
      'per-ip|ip:2001:db8:9:9/64',
    ]))
  })

  it('warns when the Redis it uses may evict live limit keys (maxmemory-policy other than noeviction)', async () => {
    const redis = await startRedis()
    closeLater(() => redis.stop())
    const admin = new Redis(redis.url)
    await admin.config('SET', 'maxmemory-policy', 'allkeys-lru')
    admin.disconnect()
    const gw = await gatewayWith({ type: 'redis', url: redis.url, prefix: uniquePrefix('evicting') })
    await waitFor(() => gw.logs.some((line) => line.includes('maxmemory-policy')), 'the eviction warning')
    const warning = JSON.parse(gw.logs.find((line) => line.includes('maxmemory-policy')) as string) as Record<string, unknown>
    expect(warning).toMatchObject({ level: 'warn', store: 'redis', maxmemory_policy: 'allkeys-lru' })
  })
})
