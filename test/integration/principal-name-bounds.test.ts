// A principal's names (a token's sub and client_id, its act's sub, client_id and iss) go to every
// upstream in X-Bouncer-Assertion, and into logs, audit records, limit keys and store keys. A 3,500
// character sub (well under max_token_bytes) went upstream in the assertion past what a proxy's or
// an application's header limit takes: the caller got the upstream's 400, 431 or 500, as if its
// own headers were at fault. A lone surrogate could not be a Redis session store's key (a 503
// blaming Redis at every sign-in). Both are refused as the token's fault: 401 malformed_token.
import { request } from 'undici'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { startTestGateway, type TestGateway } from '../helpers/gateway.ts'
import { startIdentityProvider, type TestIdentityProvider } from '../helpers/identity-provider.ts'
import { startUpstream, type TestUpstream } from '../helpers/upstream.ts'
import { waitFor } from '../helpers/wait.ts'

let idp: TestIdentityProvider
let upstream: TestUpstream
let gateway: TestGateway

beforeAll(async () => {
  idp = await startIdentityProvider()
  upstream = await startUpstream()
  gateway = await startTestGateway({
    issuers: [{ name: 'corp', issuer: idp.issuer, audiences: ['api://bouncer'] }],
    roles: [{ name: 'any', assumed_by: [{ issuer: 'corp' }], policies: ['all'] }],
    policies: [{ name: 'all', statements: [{ sid: 'All', effect: 'allow', actions: ['*'], routes: ['*'] }] }],
    upstreams: [{ name: 'asserted', url: upstream.url, identity_assertion: true }],
    routes: [{ id: 'asserted', path: '/asserted/*', upstream: 'asserted' }],
  })
  await waitFor(() => gateway.state.runtime.issuerKeys.get('corp')?.state === 'ready', 'keys')
})

afterAll(async () => {
  await gateway?.close()
  await upstream?.close()
  await idp?.stop()
})

async function call(claims: Record<string, unknown>): Promise<{ status: number; body: { code?: string; detail?: string } }> {
  const token = await idp.mint({ aud: 'api://bouncer', ...claims })
  const res = await request(`${gateway.url}/asserted/x`, { headers: { authorization: `Bearer ${token}` } })
  return { status: res.statusCode, body: (await res.body.json()) as { code?: string; detail?: string } }
}

describe('the names a token gives its principal', () => {
  it('a sub of 2,048 bytes is served; one of 3,500 is 401 malformed_token, and the upstream is not asked', async () => {
    const before = upstream.started.length
    expect((await call({ sub: 'a'.repeat(2_048) })).status).toBe(200)
    expect(upstream.started.length).toBe(before + 1)
    const long = await call({ sub: 'a'.repeat(3_500) })
    expect(long).toMatchObject({ status: 401, body: { code: 'malformed_token', detail: expect.stringContaining('sub is 3500 bytes') } })
    expect(upstream.started.length).toBe(before + 1)
  })

  it('a client_id or an act.sub past the bound, or a sub with a lone surrogate, is 401 malformed_token', async () => {
    expect(await call({ sub: 'svc', client_id: 'c'.repeat(2_100) })).toMatchObject({ status: 401, body: { code: 'malformed_token', detail: expect.stringContaining('client_id is 2100 bytes') } })
    expect(await call({ sub: 'alice', act: { sub: 'agent-'.repeat(400) } })).toMatchObject({ status: 401, body: { code: 'malformed_token', detail: expect.stringContaining('act.sub is 2400 bytes') } })
    expect(await call({ sub: 'alice\ud800' })).toMatchObject({ status: 401, body: { code: 'malformed_token', detail: expect.stringContaining('not well-formed Unicode') } })
  })
})
