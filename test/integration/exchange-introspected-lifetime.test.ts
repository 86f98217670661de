// Found by an adversarial probe (helper): token exchange turned an opaque token, which a revocation at its provider stops within introspection.cache, into a token the gateway signs that lived the whole token_exchange.lifetime; and an API key sent as subject_token or actor_token was handed to the introspection provider.
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { decodeJwt } from 'jose'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { exchange, ISSUER, type TokenRequest } from '../helpers/exchange.ts'
import { startTestGateway, type TestGateway } from '../helpers/gateway.ts'
import { AUDIENCE, startIdentityProvider, type TestIdentityProvider } from '../helpers/identity-provider.ts'
import { answerJson, startIntrospectionEndpoint, type TestIntrospectionEndpoint } from '../helpers/introspection-endpoint.ts'
import { startUpstream, type TestUpstream } from '../helpers/upstream.ts'
import { waitFor } from '../helpers/wait.ts'

const LEGACY = 'https://legacy.test'
const LEGACY_AUD = 'api://legacy'
const API_KEY = 'bk_probeid_probesecretprobesecretprobesecret'

let dir: string
let endpoint: TestIntrospectionEndpoint
let idp: TestIdentityProvider
let upstream: TestUpstream
const gateways: TestGateway[] = []
let jwtUser: string
let jwtAgent: string

/** JWTs from the identity provider (corp), opaque tokens introspected at the test's endpoint (legacy). */
async function gatewayWithCache(cache: string): Promise<TestGateway> {
  const corp = (subject: string) => ({ issuer: 'corp', subject })
  const legacy = (subject: string) => ({ issuer: 'legacy', subject })
  const gw = await startTestGateway({
    issuers: [
      { name: 'corp', issuer: idp.issuer, audiences: [AUDIENCE] },
      { name: 'legacy', issuer: LEGACY, audiences: [LEGACY_AUD], introspection: { url: endpoint.url, client_id: 'bouncer', client_secret: 'bouncer-secret', cache } },
    ],
    roles: [
      { name: 'reader', assumed_by: [corp('alice'), legacy('alice')], policies: ['read'] },
      { name: 'agent', assumed_by: [corp('agent-1'), legacy('agent-1')], policies: ['read'] },
    ],
    policies: [{ name: 'read', statements: [{ sid: 'Read', effect: 'allow', actions: ['GET'], routes: ['reports'] }] }],
    upstreams: [{ name: 'api', url: upstream.url }],
    routes: [{ id: 'reports', path: '/reports/*', upstream: 'api' }],
    token_exchange: { issuer: ISSUER, lifetime: '10m', require_actor: false, actors: [{ role: 'agent', delegated_roles: ['reader'] }] },
    audit: { sinks: [{ type: 'sqlite', path: join(dir, `audit-${gateways.length}.db`) }], spill_dir: join(dir, `spill-${gateways.length}`), flush_interval: '20ms' },
  })
  gateways.push(gw)
  await waitFor(() => gw.state.runtime.issuerKeys.get('corp')?.state === 'ready', 'the issuer keys', 20_000)
  return gw
}

/** The issued token's life as its answer and its own claims state it. */
function lifeOf(answer: { body: { access_token?: string; expires_in?: number } }) {
  const claims = decodeJwt(answer.body.access_token as string)
  return { expiresIn: answer.body.expires_in, claimed: (claims.exp as number) - (claims.iat as number) }
}

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'exchange-introspected-'))
  endpoint = await startIntrospectionEndpoint()
  idp = await startIdentityProvider()
  upstream = await startUpstream()
  const soon = Math.floor(Date.now() / 1000) + 3600
  endpoint.answers.set('opaque-alice', answerJson({ active: true, sub: 'alice', aud: LEGACY_AUD, exp: soon }))
  endpoint.answers.set('opaque-agent', answerJson({ active: true, sub: 'agent-1', aud: LEGACY_AUD, exp: soon }))
  jwtUser = await idp.mint({ sub: 'alice', exp: soon })
  jwtAgent = await idp.mint({ sub: 'agent-1', exp: soon })
}, 60_000)

afterAll(async () => {
  for (const gw of gateways) await gw.close()
  await upstream?.close()
  await idp?.stop()
  await endpoint?.close()
  if (dir) await rm(dir, { recursive: true, force: true })
})

describe('introspection.cache 5s', () => {
  let gw: TestGateway
  beforeAll(async () => {
    gw = await gatewayWithCache('5s')
  }, 60_000)

  it('an exchanged opaque user token lives no longer than introspection.cache, not the whole lifetime', async () => {
    const answer = await exchange(gw.url, { subject: 'opaque-alice' })
    expect(answer.status).toBe(200)
    const life = lifeOf(answer)
    expect(life.expiresIn).toBeGreaterThan(0)
    expect(life.expiresIn).toBeLessThanOrEqual(5)
    expect(life.claimed).toBe(life.expiresIn)
  })

  it('so does one whose agent acts with an opaque token; JWTs on both sides keep the lifetime', async () => {
    const opaqueAgent = await exchange(gw.url, { subject: jwtUser, actor: 'opaque-agent' })
    expect(opaqueAgent.status).toBe(200)
    expect(lifeOf(opaqueAgent).claimed).toBeLessThanOrEqual(5)
    const jwts = await exchange(gw.url, { subject: jwtUser, actor: jwtAgent })
    expect(jwts.status).toBe(200)
    expect(lifeOf(jwts)).toEqual({ expiresIn: 600, claimed: 600 })
  })

  it('refuses an API key as subject_token or actor_token, and never sends it to the introspection endpoint', async () => {
    const asSubject: TokenRequest = { subject: API_KEY }
    const asActor: TokenRequest = { subject: 'opaque-alice', actor: API_KEY }
    for (const tokens of [asSubject, asActor]) {
      const answer = await exchange(gw.url, tokens)
      expect(answer.status).toBe(400)
      expect(answer.body.error).toBe('invalid_grant')
      expect(answer.body.error_description).toContain('API keys cannot be exchanged')
    }
    expect(endpoint.asked).not.toContain(API_KEY)
  })
})

describe('introspection.cache 0s (asked at every use)', () => {
  it('refuses to exchange an opaque token: a token signed for it could not be revoked', async () => {
    const gw = await gatewayWithCache('0s')
    const answer = await exchange(gw.url, { subject: 'opaque-alice' })
    expect(answer.status).toBe(400)
    expect(answer.body.error).toBe('invalid_grant')
    expect(answer.body.error_description).toContain('introspection.cache')
    // A JWT user is exchanged as ever.
    expect((await exchange(gw.url, { subject: jwtUser })).status).toBe(200)
  }, 60_000)
})
