// Found by an adversarial probe (helper): a token with an empty `sub` ("") was accepted with "" as its principal, ahead of its client_id, so every such token shared one identity for roles, limits and the audit.
import { request } from 'undici'
import { afterAll, beforeAll, expect, it } from 'vitest'
import { startTestGateway, type TestGateway } from '../helpers/gateway.ts'
import { AUDIENCE, startIdentityProvider, type TestIdentityProvider } from '../helpers/identity-provider.ts'
import { startUpstream, type TestUpstream } from '../helpers/upstream.ts'
import { waitFor } from '../helpers/wait.ts'

let idp: TestIdentityProvider
let strict: TestIdentityProvider
let upstream: TestUpstream
let gateway: TestGateway

beforeAll(async () => {
  ;[idp, strict, upstream] = await Promise.all([startIdentityProvider(), startIdentityProvider(), startUpstream()])
  gateway = await startTestGateway({
    issuers: [
      { name: 'corp', issuer: idp.issuer, audiences: [AUDIENCE] },
      { name: 'strict', issuer: strict.issuer, audiences: [AUDIENCE], required_claims: ['sub'] },
    ],
    // Only the client "looker" holds a role: a 200 says the principal is looker.
    roles: [{ name: 'reader', assumed_by: [{ issuer: 'corp', subject: 'looker' }, { issuer: 'strict', subject: 'looker' }], policies: ['read'] }],
    policies: [{ name: 'read', statements: [{ sid: 'Read', effect: 'allow', actions: ['*'], routes: ['*'] }] }],
    upstreams: [{ name: 'data', url: upstream.url }],
    routes: [{ id: 'data', path: '/data/*', upstream: 'data' }],
  })
  for (const name of ['corp', 'strict']) await waitFor(() => gateway.state.runtime.issuerKeys.get(name)?.state === 'ready', `${name} keys`, 20_000)
}, 60_000)

afterAll(async () => {
  await gateway?.close()
  await Promise.all([upstream?.close(), idp?.stop(), strict?.stop()])
})

async function call(token: string): Promise<{ status: number; code?: string }> {
  const res = await request(`${gateway.url}/data/x`, { headers: { authorization: `Bearer ${token}` } })
  const text = await res.body.text()
  return { status: res.statusCode, code: text.startsWith('{') ? (JSON.parse(text) as { code?: string }).code : undefined }
}

it('an empty or blank sub names no principal: 401 claim_missing', async () => {
  for (const sub of ['', '   ', '\t']) {
    expect(await call(await idp.mint({ sub })), JSON.stringify(sub)).toMatchObject({ status: 401, code: 'claim_missing' })
  }
})

it('an empty sub does not hide the client_id it came with: the client is the principal', async () => {
  expect(await call(await idp.mint({ sub: '', client_id: 'looker' }))).toMatchObject({ status: 200 })
  expect(await call(await idp.mint({ sub: ' ', azp: 'looker' }))).toMatchObject({ status: 200 })
  // An empty client_id is no principal either.
  expect(await call(await idp.mint({ sub: '', client_id: '' }))).toMatchObject({ status: 401, code: 'claim_missing' })
})

it('an issuer that requires sub refuses an empty one, client_id or not', async () => {
  expect(await call(await strict.mint({ sub: '', client_id: 'looker' }))).toMatchObject({ status: 401, code: 'claim_missing' })
  expect(await call(await strict.mint({ sub: 'looker' }))).toMatchObject({ status: 200 })
})
