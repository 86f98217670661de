// Found by an adversarial probe (helper). X-Bouncer-Assertion on a call made with an exchanged
// token: `idp` must be the original issuer (SPEC "On the wire"), the user's identity provider. It
// was the gateway's own token_exchange issuer, so users of two identity providers with the same
// `sub` reached the upstream as one and the same person.
import { decodeJwt } from 'jose'
import { request } from 'undici'
import { afterAll, beforeAll, expect, it } from 'vitest'
import { exchanged as exchangedAt } from '../helpers/exchange.ts'
import { startTestGateway, type TestGateway } from '../helpers/gateway.ts'
import { AUDIENCE, startIdentityProvider, type TestIdentityProvider } from '../helpers/identity-provider.ts'
import { startUpstream, type TestUpstream } from '../helpers/upstream.ts'
import { waitFor } from '../helpers/wait.ts'

const ISSUER = 'https://gw.bouncer.test'
let corp: TestIdentityProvider
let partner: TestIdentityProvider
let upstream: TestUpstream
let gw: TestGateway

beforeAll(async () => {
  const clients = [
    { clientId: 'alice-app', secret: 'alice-app-secret-0123456789abcdef' },
    { clientId: 'reports-agent', secret: 'reports-agent-secret-0123456789ab' },
  ]
  ;[corp, partner, upstream] = await Promise.all([startIdentityProvider({ clients }), startIdentityProvider({ clients }), startUpstream()])
  gw = await startTestGateway({
    issuers: [{ name: 'corp', issuer: corp.issuer, audiences: [AUDIENCE] }, { name: 'partner', issuer: partner.issuer, audiences: [AUDIENCE] }],
    roles: [
      { name: 'analyst', assumed_by: [{ issuer: 'corp', subject: 'alice-app' }, { issuer: 'partner', subject: 'alice-app' }], policies: ['read'] },
      { name: 'agent', assumed_by: [{ issuer: 'corp', subject: 'reports-agent' }], policies: ['read'] },
    ],
    policies: [{ name: 'read', statements: [{ sid: 'Read', effect: 'allow', actions: ['GET'], routes: ['reports'] }] }],
    upstreams: [{ name: 'data-api', url: upstream.url, identity_assertion: true }],
    routes: [{ id: 'reports', path: '/reports/*', upstream: 'data-api' }],
    token_exchange: { issuer: ISSUER, audiences: [ISSUER], actors: [{ role: 'agent', delegated_roles: ['analyst'] }] },
  })
  await waitFor(() => gw.state.runtime.issuerKeys.get('corp')?.state === 'ready' && gw.state.runtime.issuerKeys.get('partner')?.state === 'ready', 'keys', 20_000)
}, 60_000)

afterAll(async () => {
  await gw?.close()
  await Promise.all([upstream?.close(), corp?.stop(), partner?.stop()])
})

async function exchanged(user: TestIdentityProvider): Promise<string> {
  return exchangedAt(gw.url, { subject: await user.token('alice-app'), actor: await corp.token('reports-agent') })
}

async function assertionFor(token: string) {
  const res = await request(`${gw.url}/reports/x`, { headers: { authorization: `Bearer ${token}` } })
  const body = (await res.body.json()) as { headers: Record<string, string> }
  expect(res.statusCode, JSON.stringify(body)).toBe(200)
  return decodeJwt(body.headers['x-bouncer-assertion'] as string)
}

it('the assertion of a direct call names the user\'s identity provider (baseline)', async () => {
  expect(await assertionFor(await partner.token('alice-app'))).toMatchObject({ sub: 'alice-app', idp: partner.issuer })
})

it('the assertion of a delegated call names the user\'s identity provider as idp, not the gateway', async () => {
  const claims = await assertionFor(await exchanged(partner))
  expect(claims).toMatchObject({ sub: 'alice-app', act: { sub: 'reports-agent' } })
  expect(claims.idp).toBe(partner.issuer)
})

it('two users of two providers with one sub are two callers to the upstream', async () => {
  const a = await assertionFor(await exchanged(corp))
  const b = await assertionFor(await exchanged(partner))
  expect({ sub: a.sub, idp: a.idp }).not.toEqual({ sub: b.sub, idp: b.idp })
})
