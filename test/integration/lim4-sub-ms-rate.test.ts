// The memory limits store read the clock in whole milliseconds: 5000/s with burst 1 let one request
// a millisecond through, a thousand a second, and a caller who waited the 0.2 ms the rate asks was
// refused three times in four. Through a gateway whose clock (Date and performance, faked: timers
// stay real) moves a quarter of a millisecond between requests, each wait now lets one through.
import { request } from 'undici'
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest'
import { startTestGateway, type TestGateway } from '../helpers/gateway.ts'
import { startUpstream, type TestUpstream } from '../helpers/upstream.ts'

let upstream: TestUpstream
let gw: TestGateway | undefined

beforeAll(async () => {
  upstream = await startUpstream((_req, res) => void res.end('ok'))
})
afterAll(async () => {
  vi.useRealTimers()
  await gw?.close()
  await upstream.close()
})

async function hit() {
  const res = await request(`${gw?.url}/r`, { headers: { 'x-client': 'fast' } })
  await res.body.text()
  return { status: res.statusCode, retryAfter: res.headers['retry-after'], ratelimit: res.headers.ratelimit }
}

describe('a fast rate with a small burst (memory store)', () => {
  it('lets a request through every interval, not every millisecond', async () => {
    vi.useFakeTimers({ toFake: ['Date', 'performance'] })
    vi.setSystemTime(new Date('2027-03-14T12:00:00.000Z'))
    gw = await startTestGateway({
      upstreams: [{ name: 'api', url: upstream.url }],
      limits: [{ name: 'fast', key: 'header:X-Client', rate: '5000/s', burst: 1 }],
      routes: [{ id: 'r', path: '/r', upstream: 'api', public: true, limits: ['fast'] }],
    })
    expect((await hit()).status).toBe(200)
    expect(await hit()).toMatchObject({ status: 429, retryAfter: '1', ratelimit: '"fast";r=0;t=1' })
    const statuses: number[] = []
    for (let i = 0; i < 40; i++) {
      vi.advanceTimersByTime(0.25) // longer than the 0.2 ms interval, shorter than a millisecond
      statuses.push((await hit()).status, (await hit()).status)
    }
    // Each wait: one through, the next refused (the burst is 1).
    expect(statuses).toEqual(Array.from({ length: 40 }, () => [200, 429]).flat())
  })
})
