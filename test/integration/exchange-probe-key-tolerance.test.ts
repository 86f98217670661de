// Found by an adversarial probe (helper): a signing key the gateway stopped signing with (a reload
// that named another key, a rotation out of the store's previous version) stayed published for
// token_exchange.lifetime, but the tokens it signed are accepted until their exp plus the 5 s clock
// tolerance of the gateway's own tokens. In those last seconds a token the gateway had not yet seen
// got 401 key_not_found, where one already verified (cached) was still served.
import { generateKeyPairSync } from 'node:crypto'
import { decodeJwt } from 'jose'
import { request } from 'undici'
import { afterAll, beforeAll, expect, it } from 'vitest'
import { exchanged, ISSUER } from '../helpers/exchange.ts'
import { startTestGateway, type TestGateway } from '../helpers/gateway.ts'
import { AUDIENCE, startIdentityProvider, type TestIdentityProvider } from '../helpers/identity-provider.ts'
import { startUpstream, type TestUpstream } from '../helpers/upstream.ts'
import { waitFor } from '../helpers/wait.ts'

let idp: TestIdentityProvider
let upstream: TestUpstream
let gw: TestGateway

const config = (signing: Record<string, unknown>) => ({
  secrets: { store: { type: 'env', prefix: 'EXCHANGE_PROBE_SECRET_' } },
  issuers: [{ name: 'corp', issuer: idp.issuer, audiences: [AUDIENCE] }],
  roles: [{ name: 'anyone', assumed_by: [{ issuer: 'corp' }], policies: ['read'] }],
  policies: [{ name: 'read', statements: [{ effect: 'allow', actions: ['GET'], routes: ['reports'] }] }],
  upstreams: [{ name: 'data-api', url: upstream.url }],
  routes: [{ id: 'reports', path: '/reports/*', upstream: 'data-api' }],
  token_exchange: { issuer: ISSUER, lifetime: '3s', require_actor: false, actors: [{ role: 'anyone', delegated_roles: ['*'] }], signing },
})

beforeAll(async () => {
  ;[idp, upstream] = await Promise.all([startIdentityProvider(), startUpstream()])
  const pem = generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey.export({ format: 'pem', type: 'pkcs8' }) as string
  gw = await startTestGateway(config({}), { env: { EXCHANGE_PROBE_SECRET_OPERATOR_KEY: pem } })
  await waitFor(() => gw.state.runtime.issuerKeys.get('corp')?.state === 'ready', 'the issuer keys', 20_000)
}, 60_000)

afterAll(async () => {
  await gw?.close()
  await Promise.all([upstream?.close(), idp?.stop()])
})

it('keeps a key it stopped signing with published as long as its tokens are accepted: their exp plus the clock tolerance', async () => {
  const token = await exchanged(gw.url, { subject: await idp.token('looker-reports') })
  // The reload moves to the operator's key: the gateway's own one is kept published for the tokens it signed.
  await gw.writeConfig(config({ key: '${secret:operator-key}' }))
  expect((await gw.reload()).ok).toBe(true)
  // Two seconds past its exp: within the 5 s tolerance, a token the new runtime has not seen yet.
  const exp = decodeJwt(token).exp as number
  await waitFor(() => Date.now() >= exp * 1000 + 2_000, 'two seconds past the token\'s exp', 10_000)
  const call = await request(`${gw.url}/reports/a`, { headers: { authorization: `Bearer ${token}` } })
  const body = (await call.body.json()) as { code?: string }
  // Before: 401 key_not_found, the key gone at the reload plus lifetime.
  expect({ status: call.statusCode, code: body.code }).toEqual({ status: 200, code: undefined })
  // And refused once the tolerance has passed too, as any token.
  await waitFor(() => Date.now() >= exp * 1000 + 5_500, 'the tolerance past', 10_000)
  const late = await request(`${gw.url}/reports/b`, { headers: { authorization: `Bearer ${token}` } })
  // token_expired, or key_not_found once the key's own time is up too (lifetime plus the tolerance
  // from the reload, which came a moment after the token's issue): the key is looked up first.
  expect({ status: late.statusCode, code: ((await late.body.json()) as { code?: string }).code }).toEqual({ status: 401, code: expect.stringMatching(/^(token_expired|key_not_found)$/) })
}, 30_000)
