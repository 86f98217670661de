// Found by an adversarial probe (helper). The bearer verifier counts a token in the query string as "present" so that it is refused rather
// than ignored. presentIn uses query.includes('access_token='), while the refusal itself looks for a
// real parameter named access_token (/(?:^|&)access_token=/). A query parameter that merely ends in
// "access_token" (no_access_token=1, report_access_token=…) makes the bearer kind "present": on a
// route accepting [bearer, api_key] (or [bearer, session]) the request's real credential is then never
// looked at, and the caller gets 401 missing_token.
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { request } from 'undici'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { newApiKey } from '../../src/identity/api-keys/key.ts'
import { startTestGateway, type TestGateway } from '../helpers/gateway.ts'
import { AUDIENCE, startIdentityProvider, type TestIdentityProvider } from '../helpers/identity-provider.ts'
import { startUpstream, type TestUpstream } from '../helpers/upstream.ts'
import { waitFor } from '../helpers/wait.ts'

const ADMIN = 'query-access-token-admin-token-0123'
let dir: string
let idp: TestIdentityProvider
let upstream: TestUpstream
let gateway: TestGateway

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'bouncer-query-access-token-'))
  idp = await startIdentityProvider()
  upstream = await startUpstream()
  gateway = await startTestGateway({
    admin: { token: ADMIN },
    api_keys: { store: { type: 'sqlite', path: join(dir, 'keys.db') } },
    issuers: [{ name: 'corp', issuer: idp.issuer, audiences: [AUDIENCE] }],
    roles: [{ name: 'keys', assumed_by: [{ issuer: 'api-keys' }, { issuer: 'corp' }], policies: ['read'] }],
    policies: [{ name: 'read', statements: [{ sid: 'Read', effect: 'allow', actions: ['GET'], routes: ['*'] }] }],
    upstreams: [{ name: 'api', url: upstream.url }],
    routes: [{ id: 'bearer-first', path: '/either/*', upstream: 'api', accept: ['bearer', 'api_key'] }],
  })
  await waitFor(() => gateway.state.runtime.issuerKeys.get('corp')?.state === 'ready', 'the issuer keys')
})

afterAll(async () => {
  await gateway?.close()
  await upstream?.close()
  await idp?.stop()
  await rm(dir, { recursive: true, force: true })
})

describe('a query parameter whose name ends in access_token', () => {
  it('does not hide the API key the request carries (accept: [bearer, api_key])', async () => {
    const created = newApiKey()
    await gateway.state.runtime.apiKeys!.store.insert({ id: created.id, principal: 'sheets', description: null, hash: created.hash, createdAt: Date.now(), expiresAt: null, revokedAt: null, lastUsedAt: null })
    const plain = await request(`${gateway.url}/either/x?region=eu`, { headers: { 'x-api-key': created.key } })
    await plain.body.dump()
    expect(plain.statusCode).toBe(200)
    const res = await request(`${gateway.url}/either/x?no_access_token=1`, { headers: { 'x-api-key': created.key } })
    const body = await res.body.text()
    expect(res.statusCode, body).toBe(200)
  })
})

// Found by an adversarial probe: POST /api/explain (and `bouncer explain`) allowed a request whose
// query holds an access_token, which the gateway refuses 400 bad_request before any credential
// after bearer in accept is read — a JWT in the header, or an API key on [bearer, api_key] alike.
describe('explain of a request with an access_token in its query', () => {
  it('says what the gateway answers: 400 bad_request, and a name that only ends in access_token is no token', async () => {
    const created = newApiKey()
    await gateway.state.runtime.apiKeys!.store.insert({ id: created.id, principal: 'sheets', description: null, hash: created.hash, createdAt: Date.now(), expiresAt: null, revokedAt: null, lastUsedAt: null })
    const jwt = await idp.mint({ sub: 'ana' })
    const cases = [
      { path: '/either/x?access_token=abc', headers: { authorization: `Bearer ${jwt}` }, token: jwt, status: 400 },
      { path: '/either/x?region=eu&access_token=', headers: { 'x-api-key': created.key }, token: created.key, status: 400 },
      { path: '/either/x?no_access_token=1', headers: { authorization: `Bearer ${jwt}` }, token: jwt, status: 200 },
    ]
    for (const { path, headers, token, status } of cases) {
      const real = await request(`${gateway.url}${path}`, { headers })
      const body = (await real.body.json()) as { code?: string }
      expect(real.statusCode, path).toBe(status)
      const explained = await request(`${gateway.adminUrl}/api/explain`, {
        method: 'POST',
        headers: { authorization: `Bearer ${ADMIN}`, 'content-type': 'application/json' },
        body: JSON.stringify({ method: 'GET', path, token }),
      })
      const { decision } = (await explained.body.json()) as { decision: { status: number; code: string | null; reason: string } }
      expect({ status: decision.status, code: decision.code }, path).toEqual({ status, code: status === 200 ? null : body.code })
      if (status === 400) expect(decision.reason).toBe('400 bad_request: Access tokens in the query string are not accepted: send them in the Authorization header.')
    }
  })
})
