// Found by an adversarial probe (helper): the sign-in redirect URI was built from the request's Host
// (no base_url) without consulting server.hosts, "the names clients reach the gateway by": a client
// picked the redirect_uri the provider is asked to send the code to (a provider matching redirect
// URIs loosely would send a victim's code there).
import { request } from 'undici'
import { afterAll, beforeAll, expect, it } from 'vitest'
import type { TestGateway } from '../helpers/gateway.ts'
import { startIdentityProvider, type TestIdentityProvider } from '../helpers/identity-provider.ts'
import { signInConfig, startSignInGateway } from '../helpers/sign-in.ts'
import { startUpstream, type TestUpstream } from '../helpers/upstream.ts'

let idp: TestIdentityProvider
let upstream: TestUpstream
let gw: TestGateway

beforeAll(async () => {
  idp = await startIdentityProvider()
  upstream = await startUpstream()
  gw = await startSignInGateway({
    // No trusted proxies: the client talks to the gateway directly.
    server: { hosts: ['gateway.example.com'] },
    ...signInConfig(idp, { session: { store: 'memory' } }),
    roles: [{ name: 'people', assumed_by: [{ issuer: 'sso' }], policies: ['all'] }],
    policies: [{ name: 'all', statements: [{ sid: 'All', effect: 'allow', actions: ['GET'], routes: ['app'] }] }],
    upstreams: [{ name: 'app', url: upstream.url }],
    routes: [{ id: 'app', path: '/app/*', upstream: 'app', accept: ['session'] }],
  })
}, 60_000)

afterAll(async () => {
  await gw?.close()
  await upstream?.close()
  await idp?.stop()
})

it('a Host that server.hosts does not list does not become the sign-in redirect_uri: 400', async () => {
  const res = await request(`${gw.url}/.bouncer/sign_in?return_to=/app/x`, { headers: { host: 'evil.example' } })
  const body = (await res.body.json()) as { code: string; detail: string }
  expect(res.headers.location).toBeUndefined()
  expect(res.statusCode).toBe(400)
  expect(body.detail).toContain('server.hosts')
})

it('a listed Host does', async () => {
  const res = await request(`${gw.url}/.bouncer/sign_in?return_to=/app/x`, { headers: { host: 'gateway.example.com' } })
  await res.body.dump()
  expect(res.statusCode).toBe(302)
  expect(new URL(String(res.headers.location)).searchParams.get('redirect_uri')).toBe('http://gateway.example.com/.bouncer/callback')
})
