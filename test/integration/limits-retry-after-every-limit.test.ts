// Found by a probe (helper): a 429 answered for the first exhausted limit of the route only. A
// rate spent for 0.2 s beside a quota spent for the minute got 429 rate_limited, Retry-After: 1,
// and a RateLimit without the quota or the route's other limit; the retry a second later met
// 429 quota_exceeded. Also (Redis) the quota's "resets at" said …:59.999Z in some answers and
// …:00.000Z in others. Memory and Redis stores alike. The probe's rate was 5/s; here it is 6/m,
// so that a loaded machine's slow requests cannot earn one back before the refusal.
import { setTimeout as sleep } from 'node:timers/promises'
import { request } from 'undici'
import { afterAll, beforeAll, describe, it } from 'vitest'
import { allowAnyCaller, startTestGateway, type TestGateway } from '../helpers/gateway.ts'
import { AUDIENCE, startIdentityProvider, type TestIdentityProvider } from '../helpers/identity-provider.ts'
import { uniquePrefix } from '../helpers/redis.ts'
import { startUpstream, type TestUpstream } from '../helpers/upstream.ts'
import { waitFor } from '../helpers/wait.ts'

let upstream: TestUpstream
let idp: TestIdentityProvider

beforeAll(async () => {
  upstream = await startUpstream((_req, res) => void res.end('ok'))
  idp = await startIdentityProvider()
})
afterAll(async () => {
  await upstream.close()
  await idp.stop()
})

async function gatewayWith(store: 'memory' | 'redis', closeLater: (close: () => Promise<void>) => void): Promise<TestGateway> {
  const gw = await startTestGateway({
    issuers: [{ name: 'corp', issuer: idp.issuer, audiences: [AUDIENCE] }],
    ...allowAnyCaller(['corp']),
    upstreams: [{ name: 'api', url: upstream.url }],
    limits: [
      { name: 'rb', key: 'principal', rate: '6/m', burst: 8, quota: '8/m' },
      { name: 'q2', key: 'principal', quota: '100/h' },
    ],
    limits_store: store === 'redis' ? { type: 'redis', url: 'redis://127.0.0.1:6379', prefix: uniquePrefix('retry-after-every-limit') } : { type: 'memory' },
    routes: [{ id: 'both', path: '/both', upstream: 'api', limits: ['rb', 'q2'] }],
  })
  closeLater(() => gw.close())
  if (store === 'redis') await waitFor(() => gw.state.runtime.limiter.store.status() === 'ready', 'redis')
  return gw
}

async function hit(gw: TestGateway, token: string) {
  const res = await request(`${gw.url}/both`, { headers: { authorization: `Bearer ${token}` } })
  const text = await res.body.text()
  const body = text.startsWith('{') ? (JSON.parse(text) as { code?: string; detail?: string }) : {}
  return { status: res.statusCode, code: body.code, detail: body.detail, retryAfter: res.headers['retry-after'], ratelimit: res.headers.ratelimit, policy: res.headers['ratelimit-policy'] }
}

/**
 * Until the minute has at least 15 s left: more than the rate's 10 s wait, and the quota is spent and
 * refused in one window. At once when it has (the test then waits for that minute's end, not a later
 * one), else from the next minute's first second.
 */
async function timeLeftInTheMinute(): Promise<void> {
  const into = Date.now() % 60_000
  if (into >= 1_000 && into <= 45_000) return
  await sleep((61_000 - into) % 60_000)
}

describe('a 429 when a rate and a quota are both spent', () => {
  // Both stores in the same minute: each waits for the minute's end.
  it.concurrent.for(['memory', 'redis'] as const)('%s store: waits for the limit that frees last and names it; RateLimit lists every limit, none charged', { timeout: 120_000 }, async (store, { expect, onTestFinished }) => {
    const gw = await gatewayWith(store, onTestFinished)
    const token = await idp.token('looker-reports')
    await timeLeftInTheMinute()
    const windowEnd = Math.ceil(Date.now() / 60_000) * 60_000
    const spent = []
    for (let i = 0; i < 8; i++) spent.push(await hit(gw, token))
    expect(spent.map((r) => r.status)).toEqual(Array(8).fill(200))
    expect(spent[0]?.policy).toBe('"rb/rate";q=8;w=80, "rb/quota";q=8;w=60, "q2";q=100;w=3600')
    expect(spent[7]?.ratelimit).toMatch(/^"rb\/rate";r=0;t=(7\d|80), "rb\/quota";r=0;t=\d+, "q2";r=92;t=\d+$/)

    // Both rb's rate (10 s) and its quota (15 s or more, until the minute's end) refuse: the quota's wait is the 429's.
    const asked = Date.now()
    const refusals = []
    for (let i = 0; i < 3; i++) refusals.push(await hit(gw, token))
    const waited = Date.now()
    for (const refused of refusals) {
      expect(refused).toMatchObject({ status: 429, code: 'quota_exceeded', detail: `Quota "rb" (8 requests per minute) is used up; it resets at ${new Date(windowEnd).toISOString()}.` })
      // Whole seconds until the window's end, rounded up, as of when it was answered.
      expect(Number(refused.retryAfter)).toBeGreaterThanOrEqual(Math.ceil((windowEnd - waited) / 1000))
      expect(Number(refused.retryAfter)).toBeLessThanOrEqual(Math.ceil((windowEnd - asked) / 1000))
      // Every limit as it stands: the refusals charged q2 nothing (still 92 of 100).
      expect(refused.ratelimit).toMatch(/^"rb\/rate";r=0;t=(7\d|80), "rb\/quota";r=0;t=\d+, "q2";r=92;t=\d+$/)
    }
    // Retried when Retry-After says, it is admitted.
    const retryAfter = Number(refusals[2]?.retryAfter)
    expect(retryAfter).toBeGreaterThan(10)
    expect(retryAfter).toBeLessThanOrEqual(60)
    await sleep(retryAfter * 1_000 - (Date.now() - waited))
    const retried = await hit(gw, token)
    expect(retried.status).toBe(200)
    expect(retried.ratelimit).toMatch(/^"rb\/rate";r=\d;t=\d+, "rb\/quota";r=7;t=\d+, "q2";r=\d+;t=\d+$/)
  })
})
