// A reload that changes an issuer's settings but not where its keys come from (its issuer and
// jwks_uri) keeps the keys it holds: found by a probe, a reload that only changed jwks_cooldown,
// jwks_refresh_interval or the issuer's name, made while the provider was down, answered "ok" and
// turned every valid token of that issuer from 200 into 503 identity_provider_unavailable until the
// provider came back: the new key set started empty, the cached keys were dropped with the old one.
import { request } from 'undici'
import { afterAll, beforeAll, expect, it } from 'vitest'
import { allowAnyCaller, startTestGateway, type TestGateway } from '../helpers/gateway.ts'
import { AUDIENCE, startIdentityProvider, type TestIdentityProvider } from '../helpers/identity-provider.ts'
import { startUpstream, type TestUpstream } from '../helpers/upstream.ts'
import { waitFor } from '../helpers/wait.ts'

let idp: TestIdentityProvider
let upstream: TestUpstream
let gateway: TestGateway

function config(issuer: Record<string, unknown>): Record<string, unknown> {
  return {
    issuers: [{ issuer: idp.issuer, audiences: [AUDIENCE], ...issuer }],
    ...allowAnyCaller([issuer.name as string]),
    upstreams: [{ name: 'data', url: upstream.url }],
    routes: [{ id: 'data', path: '/*', upstream: 'data' }],
  }
}

beforeAll(async () => {
  idp = await startIdentityProvider()
  upstream = await startUpstream()
  gateway = await startTestGateway(config({ name: 'corp', jwks_cooldown: '30s' }))
  await waitFor(() => gateway.state.runtime.issuerKeys.get('corp')?.state === 'ready', 'the issuer keys')
})

afterAll(async () => {
  await gateway?.close()
  await upstream?.close()
  await idp?.stop()
})

async function answer(token: string): Promise<{ status: number; code?: string }> {
  const res = await request(`${gateway.url}/x`, { headers: { authorization: `Bearer ${token}` } })
  const text = await res.body.text()
  return { status: res.statusCode, code: (JSON.parse(text) as { code?: string }).code }
}

it('tokens keep being verified with the cached keys after reloads made while the provider is down', async () => {
  const token = await idp.token('looker-reports')
  expect(await answer(token)).toMatchObject({ status: 200 })
  await idp.stop()
  expect(await answer(token)).toMatchObject({ status: 200 }) // the cached keys serve

  for (const changed of [{ name: 'corp', jwks_cooldown: '10s' }, { name: 'corp', jwks_cooldown: '10s', jwks_refresh_interval: '1m' }, { name: 'sso', jwks_cooldown: '10s', jwks_refresh_interval: '1m' }]) {
    await gateway.writeConfig(config(changed))
    expect((await gateway.reload()).ok).toBe(true)
    expect(await answer(token), JSON.stringify(changed)).toMatchObject({ status: 200 })
  }
  // Its refreshes go on failing, and say so, as the key set's before the reload did.
  await waitFor(() => gateway.state.runtime.issuerKeys.get('sso')?.attempted === true, 'the new key set\'s first refresh')
  expect(gateway.state.runtime.issuerKeys.get('sso')).toMatchObject({ state: 'ready', hasKeys: true })
})
