// Found by the limits probe (helper): a route taking GET did not take HEAD, so a HEAD of its path
// went to a later route that did (a catch-all with methods "*"), with none of the GET route's
// limits. The upstream runs its GET handler for a HEAD (Express, Spring, Go's ServeMux), so the
// report limited to 1/m ran without end. A route that takes GET takes its HEAD now.
import { request } from 'undici'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { startTestGateway, type TestGateway } from '../helpers/gateway.ts'
import { startUpstream, type TestUpstream } from '../helpers/upstream.ts'

let upstream: TestUpstream
let gw: TestGateway

beforeAll(async () => {
  upstream = await startUpstream((_req, res) => void res.end('report'))
  gw = await startTestGateway({
    upstreams: [{ name: 'api', url: upstream.url }],
    limits: [{ name: 'reports', key: 'header:X-Client', rate: '1/m', burst: 1 }],
    routes: [
      { id: 'report', methods: ['GET'], path: '/reports/:id', upstream: 'api', public: true, limits: ['reports'] },
      { id: 'rest', methods: ['*'], path: '/*', upstream: 'api', public: true },
    ],
  })
})
afterAll(async () => {
  await gw.close()
  await upstream.close()
})

async function call(method: 'GET' | 'HEAD' | 'POST', path: string, client: string) {
  const res = await request(`${gw.url}${path}`, { method, headers: { 'x-client': client } })
  await res.body.dump()
  return { status: res.statusCode, retryAfter: res.headers['retry-after'], ratelimit: res.headers.ratelimit, allow: res.headers.allow }
}

describe('HEAD of a rate-limited GET route', () => {
  it('counts in the GET route\'s limit, not a later route\'s', async () => {
    const before = upstream.received.length
    expect(await call('HEAD', '/reports/1', 'a')).toMatchObject({ status: 200, ratelimit: '"reports";r=0;t=60' })
    expect(await call('GET', '/reports/1', 'a')).toMatchObject({ status: 429, retryAfter: '60' })
    expect(await call('HEAD', '/reports/1', 'a')).toMatchObject({ status: 429, retryAfter: '60' })
    expect(upstream.received.length - before).toBe(1)
    expect(upstream.received.at(-1)?.method).toBe('HEAD')
  })

  it('other methods still go to the route that lists them', async () => {
    expect(await call('POST', '/reports/1', 'b')).toMatchObject({ status: 200, ratelimit: undefined })
  })
})
