// A rotation learnt from a token's unknown kid (the usual way: the provider's first token signed
// with its new key) drops the keys the provider withdrew for cached verifications too, as a
// scheduled refresh does: found by a probe, a token verified with the withdrawn key was still
// answered from the token cache, up to jwks_refresh_interval (5 minutes by default), while the
// same key's uncached tokens were refused key_not_found.
import { request } from 'undici'
import { afterAll, beforeAll, expect, it } from 'vitest'
import { allowAnyCaller, startTestGateway, type TestGateway } from '../helpers/gateway.ts'
import { AUDIENCE, signingKey, startIdentityProvider, type TestIdentityProvider } from '../helpers/identity-provider.ts'
import { startUpstream, type TestUpstream } from '../helpers/upstream.ts'
import { waitFor } from '../helpers/wait.ts'

let idp: TestIdentityProvider
let upstream: TestUpstream
let gateway: TestGateway

beforeAll(async () => {
  idp = await startIdentityProvider({ keys: [await signingKey('ec-1', 'ES256')] })
  upstream = await startUpstream()
  gateway = await startTestGateway({
    // No cool-down: the unknown kid fetches at once. An hour between scheduled refreshes: only the unknown kid's fetch can learn of the rotation.
    issuers: [{ name: 'corp', issuer: idp.issuer, audiences: [AUDIENCE], jwks_cooldown: '0s', jwks_refresh_interval: '1h' }],
    ...allowAnyCaller(['corp']),
    upstreams: [{ name: 'data', url: upstream.url }],
    routes: [{ id: 'data', path: '/*', upstream: 'data' }],
  })
  await waitFor(() => gateway.state.runtime.issuerKeys.get('corp')?.state === 'ready', 'the issuer keys')
})

afterAll(async () => {
  await gateway?.close()
  await upstream?.close()
  await idp?.stop()
})

async function answer(token: string): Promise<{ status: number; code?: string }> {
  const res = await request(`${gateway.url}/x`, { headers: { authorization: `Bearer ${token}` } })
  const body = (await res.body.json()) as { code?: string }
  return { status: res.statusCode, code: body.code }
}

it('a token verified with a key the provider withdrew is refused once an unknown kid has fetched the new set', async () => {
  const cached = await idp.token('looker-reports')
  expect(await answer(cached)).toMatchObject({ status: 200 })
  const withdrawn = idp.keys[0]!
  await idp.restart([await signingKey('ec-2', 'ES256')]) // ec-1 withdrawn, ec-2 published

  expect(await answer(await idp.token('looker-reports'))).toMatchObject({ status: 200 }) // its unknown kid fetched the new set
  expect(await answer(await idp.mint({}, { key: withdrawn }))).toMatchObject({ status: 401, code: 'key_not_found' })
  expect(await answer(cached)).toMatchObject({ status: 401, code: 'key_not_found' })
  expect(gateway.logs.some((line) => line.includes('keys the provider no longer publishes are no longer honoured'))).toBe(true)
})
