// Found by an adversarial probe (helper): a 429 from a later limit of a route reported the earlier limits as if charged (r one lower, t one interval longer), though all or nothing charged them nothing (memory and Redis stores).
import { request } from 'undici'
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest'
import { startTestGateway, type TestGateway } from '../helpers/gateway.ts'
import { uniquePrefix } from '../helpers/redis.ts'
import { startUpstream, type TestUpstream } from '../helpers/upstream.ts'
import { waitFor } from '../helpers/wait.ts'

let upstream: TestUpstream
let gw: TestGateway | undefined

beforeAll(async () => {
  upstream = await startUpstream((_req, res) => void res.end('ok'))
})
afterEach(async () => {
  await gw?.close()
  gw = undefined
})
afterAll(async () => {
  await upstream.close()
})

async function hit(path: string) {
  const res = await request(`${gw?.url}${path}`, { headers: { 'x-client': 'obo' } })
  await res.body.text()
  return { status: res.statusCode, ratelimit: res.headers.ratelimit }
}

describe.each(['memory', 'redis'] as const)('%s store: RateLimit on a 429 refused by a later limit', (store) => {
  it('reports the earlier, uncharged limits as they stand', async () => {
    gw = await startTestGateway({
      upstreams: [{ name: 'api', url: upstream.url }],
      limits_store: store === 'redis' ? { type: 'redis', url: 'redis://127.0.0.1:6379', prefix: uniquePrefix('refusal-report') } : { type: 'memory' },
      limits: [
        { name: 'loose', key: 'header:X-Client', rate: '1/m', burst: 5 },
        { name: 'daily', key: 'header:X-Client', quota: '100/d' },
        { name: 'tight', key: 'header:X-Client', rate: '1/m', burst: 1 },
      ],
      routes: [
        { id: 'all', path: '/all', upstream: 'api', public: true, limits: ['loose', 'daily', 'tight'] },
        { id: 'loose', path: '/loose', upstream: 'api', public: true, limits: ['loose', 'daily'] },
      ],
    })
    if (store === 'redis') await waitFor(() => gw?.state.runtime.limiter.store.status() === 'ready', 'redis')
    expect(await hit('/all')).toMatchObject({ status: 200, ratelimit: expect.stringMatching(/^"loose";r=4;t=60, "daily";r=99;t=\d+, "tight";r=0;t=60$/) })
    const refused = await hit('/all')
    expect(refused.status).toBe(429)
    // Nothing was taken from loose or daily: 4 and 99 remain, and loose is whole again in one interval.
    expect(refused.ratelimit).toMatch(/^"loose";r=4;t=60, "daily";r=99;t=\d+, "tight";r=0;t=60$/)
    expect(await hit('/loose')).toMatchObject({ status: 200, ratelimit: expect.stringMatching(/^"loose";r=3;t=120, "daily";r=98;t=\d+$/) })
  })
})
