// Found by an adversarial probe (helper): a huge burst on a slow rate (999999999999999 at 1/d) made RateLimit-Policy w=86399999999999990000 (20 digits; JS prints larger ones as 8.64e+22), not an RFC 8941 integer of at most 15 digits.
import { request } from 'undici'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { startTestGateway, type TestGateway } from '../helpers/gateway.ts'
import { startUpstream, type TestUpstream } from '../helpers/upstream.ts'

let upstream: TestUpstream
let gw: TestGateway

beforeAll(async () => {
  upstream = await startUpstream((_req, res) => void res.end('ok'))
  gw = await startTestGateway({
    upstreams: [{ name: 'api', url: upstream.url }],
    limits: [{ name: 'huge', key: 'header:X-Client', rate: '1/d', burst: 999_999_999_999_999 }],
    routes: [{ id: 'r', path: '/r', upstream: 'api', public: true, limits: ['huge'] }],
  })
})
afterAll(async () => {
  await gw?.close()
  await upstream?.close()
})

describe('RateLimit headers of a huge burst on a slow rate', () => {
  it('w is clamped to the largest structured-field integer; q, r and t stay in range', async () => {
    const res = await request(`${gw.url}/r`, { headers: { 'x-client': 'h' } })
    await res.body.text()
    expect(res.statusCode).toBe(200)
    expect(res.headers['ratelimit-policy']).toBe('"huge";q=999999999999999;w=999999999999999')
    expect(res.headers.ratelimit).toMatch(/^"huge";r=\d{1,15};t=86400$/)
  })
})
