// Found by a probe (helper): with on_error: allow and the Redis store down, the 200s of a limited
// route carried no RateLimit-Policy, though it comes from the config (the README excepted only a
// 503 limits_unavailable). Now: when the store cannot be asked, or has no room, RateLimit-Policy is
// sent and RateLimit (a state) is not; before the limits are checked (401), neither is.
import { request } from 'undici'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { allowAnyCaller, startTestGateway, type TestGateway } from '../helpers/gateway.ts'
import { AUDIENCE, startIdentityProvider, type TestIdentityProvider } from '../helpers/identity-provider.ts'
import { closeAfterEach } from '../helpers/lifecycle.ts'
import { startUpstream, type TestUpstream } from '../helpers/upstream.ts'

let upstream: TestUpstream
let idp: TestIdentityProvider
const closeLater = closeAfterEach()

beforeAll(async () => {
  upstream = await startUpstream((_req, res) => void res.end('ok'))
  idp = await startIdentityProvider()
})
afterAll(async () => {
  await upstream.close()
  await idp.stop()
})

const POLICY = '"pace";q=3;w=180, "daily";q=2;w=86400'

async function gatewayWith(limitsStore: Record<string, unknown>): Promise<TestGateway> {
  const gw = await startTestGateway({
    issuers: [{ name: 'corp', issuer: idp.issuer, audiences: [AUDIENCE] }],
    ...allowAnyCaller(['corp']),
    upstreams: [{ name: 'api', url: upstream.url }],
    limits: [{ name: 'pace', key: 'header:X-Client', rate: '1/m', burst: 3 }, { name: 'daily', key: 'header:X-Client', quota: '2/d' }],
    limits_store: limitsStore,
    routes: [
      { id: 'open', path: '/open', upstream: 'api', public: true, limits: ['pace', 'daily'] },
      { id: 'closed', path: '/closed', upstream: 'api', limits: ['pace', 'daily'] },
    ],
  })
  closeLater(() => gw.close())
  return gw
}

async function hit(gw: TestGateway, path: string, client: string) {
  const res = await request(`${gw.url}${path}`, { headers: { 'x-client': client } })
  const text = await res.body.text()
  return { status: res.statusCode, code: text.startsWith('{') ? (JSON.parse(text) as { code: string }).code : undefined, policy: res.headers['ratelimit-policy'], ratelimit: res.headers.ratelimit }
}

// Nothing listens on port 1: every take fails at once.
const DOWN = { type: 'redis', url: 'redis://127.0.0.1:1', timeout: '200ms' }

describe('the headers of a limited route when no state can be reported', () => {
  it('on_error: allow with the store down: the 200 carries RateLimit-Policy, not RateLimit', async () => {
    const gw = await gatewayWith({ ...DOWN, on_error: 'allow' })
    expect(await hit(gw, '/open', 'a')).toEqual({ status: 200, code: undefined, policy: POLICY, ratelimit: undefined })
  })

  it('on_error: deny with the store down: the 503 limits_unavailable carries RateLimit-Policy too', async () => {
    const gw = await gatewayWith({ ...DOWN, on_error: 'deny' })
    expect(await hit(gw, '/open', 'a')).toEqual({ status: 503, code: 'limits_unavailable', policy: POLICY, ratelimit: undefined })
  })

  it('a memory store full of live keys: the 503 for a new key carries RateLimit-Policy', async () => {
    const gw = await gatewayWith({ type: 'memory', max_keys: 100 })
    // Two keys per caller (a rate and a quota): 50 callers fill it.
    for (let i = 0; i < 50; i++) expect((await hit(gw, '/open', `c${i}`)).status).toBe(200)
    expect(await hit(gw, '/open', 'one-too-many')).toEqual({ status: 503, code: 'limits_unavailable', policy: POLICY, ratelimit: undefined })
    // A caller it holds goes on as before.
    expect(await hit(gw, '/open', 'c7')).toMatchObject({ status: 200, policy: POLICY, ratelimit: expect.stringMatching(/^"pace";r=1;t=120, "daily";r=0;t=\d+$/) })
  })

  it('a 401 on a limited route carries neither: the limits are not checked before the caller is known', async () => {
    const gw = await gatewayWith({ type: 'memory' })
    expect(await hit(gw, '/closed', 'a')).toEqual({ status: 401, code: expect.any(String), policy: undefined, ratelimit: undefined })
  })
})
