// Found by the limits probe (helper): a memory limits store full of live state (max_keys) took no
// count of a failed authentication, and auth_failures held nobody back: one client that sent
// max_keys requests with distinct values of a header a public route's quota counts by (100 here;
// 100,000 by default, each live until the day's end) turned it off for every address for the rest
// of the day — ten forged tokens in a row were each verified and answered 401 where
// `rate: 1/h, burst: 2` allows two. A failure the store has no room to count now holds its address
// back for one interval of the rate: no burst, but no more than the rate.
import { Agent, request } from 'undici'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { allowAnyCaller, startTestGateway, type TestGateway } from '../helpers/gateway.ts'
import { AUDIENCE, startIdentityProvider, type TestIdentityProvider } from '../helpers/identity-provider.ts'
import { startUpstream, type TestUpstream } from '../helpers/upstream.ts'

let upstream: TestUpstream
let idp: TestIdentityProvider
let gw: TestGateway
const agents: Agent[] = []

beforeAll(async () => {
  upstream = await startUpstream((_req, res) => void res.end('ok'))
  idp = await startIdentityProvider()
  gw = await startTestGateway({
    issuers: [{ name: 'corp', issuer: idp.issuer, audiences: [AUDIENCE] }],
    ...allowAnyCaller(['corp']),
    upstreams: [{ name: 'api', url: upstream.url }],
    limits: [{ name: 'per-client', key: 'header:X-Client', quota: '1000/d' }],
    limits_store: { type: 'memory', max_keys: 100 },
    routes: [
      { id: 'open', path: '/open', upstream: 'api', public: true, limits: ['per-client'] },
      { id: 'api', path: '/*', upstream: 'api' },
    ],
    auth_failures: { rate: '1/h', burst: 2 },
  })
})
afterAll(async () => {
  await Promise.all(agents.map((a) => a.close()))
  await gw?.close()
  await upstream?.close()
  await idp?.stop()
})

/** A request from one loopback address (127.0.0.0/8 is all this host's). */
async function call(from: string, path: string, headers: Record<string, string>) {
  const agent = new Agent({ localAddress: from })
  agents.push(agent)
  const res = await request(`${gw.url}${path}`, { dispatcher: agent, headers })
  const text = await res.body.text()
  return { status: res.statusCode, code: text.startsWith('{') ? (JSON.parse(text) as { code: string }).code : null, retryAfter: res.headers['retry-after'] }
}

describe('auth_failures with the memory limits store full of live state', () => {
  it('still holds back an address whose credentials fail', async () => {
    // One client fills the store: each X-Client value a live daily quota.
    for (let i = 0; i < 100; i++) expect((await call('127.0.0.1', '/open', { 'x-client': `c${i}` })).status).toBe(200)
    expect(await call('127.0.0.1', '/open', { 'x-client': 'one-more' })).toMatchObject({ status: 503, code: 'limits_unavailable' })

    const forged = { authorization: 'Bearer not.a.token' }
    expect(await call('127.0.0.2', '/x', forged)).toMatchObject({ status: 401 })
    const held = await call('127.0.0.2', '/x', forged)
    expect(held).toMatchObject({ status: 429, code: 'rate_limited' })
    expect(Number(held.retryAfter)).toBeGreaterThanOrEqual(3599)
    // Another address, with a genuine token, is served.
    expect((await call('127.0.0.3', '/x', { authorization: `Bearer ${await idp.token('looker-reports')}` })).status).toBe(200)
  })
})
