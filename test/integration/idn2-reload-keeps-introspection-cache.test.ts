// A reload keeps the introspecting issuer's cached answers while its settings stay the same: found
// by the identity probe, every reload (a route added, SIGHUP, a secrets-driven one) made a new
// introspector with empty caches, so every opaque token in use was introspected again at once (a
// burst on the provider), and a reload made while the provider was down turned every cached token
// from 200 into 503 identity_provider_unavailable, though its answer was still within
// introspection.cache, as issuer keys already survive a reload (idp2-reload-keeps-issuer-keys).
// Settings that change what an answer means (the audiences here) still start afresh.
import { request } from 'undici'
import { afterAll, beforeAll, expect, it } from 'vitest'
import { startTestGateway, type TestGateway } from '../helpers/gateway.ts'
import { answerJson, startIntrospectionEndpoint, type TestIntrospectionEndpoint } from '../helpers/introspection-endpoint.ts'
import { startUpstream, type TestUpstream } from '../helpers/upstream.ts'

let endpoint: TestIntrospectionEndpoint
let upstream: TestUpstream
let gw: TestGateway

function config(options: { routes?: object[]; audiences?: string[] } = {}): Record<string, unknown> {
  return {
    issuers: [{ name: 'legacy', issuer: 'https://legacy.test', audiences: options.audiences ?? ['api://legacy'], introspection: { url: endpoint.url, client_id: 'bouncer', client_secret: 'bouncer-secret', cache: '5m', negative_cache: '5m' } }],
    roles: [{ name: 'reader', assumed_by: [{ issuer: 'legacy' }], policies: ['read'] }],
    policies: [{ name: 'read', statements: [{ sid: 'Read', effect: 'allow', actions: ['GET'], routes: ['*'] }] }],
    upstreams: [{ name: 'api', url: upstream.url }],
    routes: options.routes ?? [{ id: 'reports', path: '/reports/*', upstream: 'api' }],
  }
}

beforeAll(async () => {
  endpoint = await startIntrospectionEndpoint()
  upstream = await startUpstream()
  gw = await startTestGateway(config())
}, 60_000)

afterAll(async () => {
  await gw?.close()
  await upstream?.close()
  await endpoint?.close()
})

async function call(token: string): Promise<{ status: number; code?: string }> {
  const res = await request(`${gw.url}/reports/daily`, { headers: { authorization: `Bearer ${token}` } })
  const text = await res.body.text()
  return { status: res.statusCode, code: res.statusCode === 200 ? undefined : (JSON.parse(text) as { code?: string }).code }
}

it('answers cached tokens from the cache after a reload, also while the provider is down', async () => {
  endpoint.answers.set('opaque-alice', answerJson({ active: true, sub: 'alice', aud: 'api://legacy' }))
  endpoint.answers.set('opaque-audit', answerJson({ active: true, sub: 'audit', aud: 'api://audit' }))
  expect(await call('opaque-alice')).toEqual({ status: 200 })
  expect(await call('opaque-revoked')).toEqual({ status: 401, code: 'token_revoked' })
  expect(await call('opaque-audit')).toMatchObject({ status: 401, code: 'audience_mismatch' })
  expect(endpoint.asked).toEqual(['opaque-alice', 'opaque-revoked', 'opaque-audit'])

  // The provider fails from here on: whatever it is asked is a 503.
  for (const token of ['opaque-alice', 'opaque-revoked', 'opaque-audit']) endpoint.answers.set(token, (res) => res.writeHead(500).end())
  await gw.writeConfig(config({ routes: [{ id: 'reports', path: '/reports/*', upstream: 'api' }, { id: 'more', path: '/more/*', upstream: 'api' }] }))
  expect((await gw.reload()).ok).toBe(true)
  expect(await call('opaque-alice')).toEqual({ status: 200 })
  expect(await call('opaque-revoked')).toEqual({ status: 401, code: 'token_revoked' })
  expect(endpoint.asked).toHaveLength(3)

  // A new audience changes what the answers mean: they are asked again.
  await gw.writeConfig(config({ audiences: ['api://legacy', 'api://audit'] }))
  expect((await gw.reload()).ok).toBe(true)
  expect(await call('opaque-audit')).toMatchObject({ status: 503, code: 'identity_provider_unavailable' })
  expect(endpoint.asked).toHaveLength(4)
})
