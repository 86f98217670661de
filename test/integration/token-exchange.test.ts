// Token exchange (RFC 8693) end to end: a real oidc-provider issues the user's and the agents'
// tokens (client credentials), the gateway exchanges them at POST /oauth2/token, and the exchanged
// token is used against a real upstream: on-behalf-of decisions for both sides, the audit record
// naming both, the identity assertion carrying `act`, and limits keyed by the agent.
import { generateKeyPairSync } from 'node:crypto'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { createRemoteJWKSet, decodeJwt, decodeProtectedHeader, jwtVerify } from 'jose'
import { request } from 'undici'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { AuditRecord } from '../../src/audit/record.ts'
import { ACCESS_TOKEN, exchange as exchangeAt, exchanged as exchangedAt, GRANT, ISSUER, postTokenRequest, tokenForm, type TokenAnswer } from '../helpers/exchange.ts'
import { startTestGateway, type TestGateway } from '../helpers/gateway.ts'
import { AUDIENCE, signingKey, startIdentityProvider, type TestIdentityProvider } from '../helpers/identity-provider.ts'
import { startUpstream, type TestUpstream } from '../helpers/upstream.ts'
import { waitFor } from '../helpers/wait.ts'
import { waitForAuditRecord } from '../helpers/audit.ts'

const MCP_AUDIENCE = 'https://gateway.test/mcp'
const ADMIN_TOKEN = 'exchange-test-admin-token-0123'

let dir: string
let db: string
let idp: TestIdentityProvider
let upstream: TestUpstream
let gw: TestGateway
let gatewayConfig: Record<string, unknown> & { token_exchange: Record<string, unknown> }
/** The user's token, and the agents' own. */
let alice: string
let agent: string
let secondAgent: string
let rogue: string

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'bouncer-exchange-'))
  db = join(dir, 'audit.db')
  idp = await startIdentityProvider({
    tokenTtlSeconds: 3600,
    clients: [
      { clientId: 'alice-app', secret: 'alice-app-secret-0123456789abcdef', claims: { tenant: 'acme' } },
      { clientId: 'reports-agent', secret: 'reports-agent-secret-0123456789ab', claims: { groups: ['agents'] } },
      { clientId: 'second-agent', secret: 'second-agent-secret-0123456789abc', claims: { groups: ['agents'] } },
      { clientId: 'rogue-agent', secret: 'rogue-agent-secret-0123456789abcd' },
    ],
  })
  upstream = await startUpstream()
  const corp = (subject: string) => ({ issuer: 'corp', subject })
  gatewayConfig = {
    issuers: [{ name: 'corp', issuer: idp.issuer, audiences: [AUDIENCE] }],
    roles: [
      { name: 'analyst', assumed_by: [corp('alice-app')], policies: ['analysts'] },
      { name: 'reporter', assumed_by: [corp('alice-app')], policies: ['reporters'] },
      { name: 'agent', assumed_by: [corp('reports-agent'), corp('second-agent')], policies: ['agents'] },
      { name: 'rogue', assumed_by: [corp('rogue-agent')], policies: ['agents'] },
    ],
    policies: [
      { name: 'analysts', statements: [{ sid: 'AnalystsRead', effect: 'allow', actions: ['GET'], routes: ['reports', 'pii', 'limited'] }] },
      { name: 'reporters', statements: [{ sid: 'ReportersRead', effect: 'allow', actions: ['GET'], routes: ['reports'] }] },
      {
        name: 'agents',
        statements: [
          { sid: 'AgentsRead', effect: 'allow', actions: ['GET'], routes: ['reports', 'agent-tools', 'limited'] },
          { sid: 'AgentsNoPii', effect: 'deny', actions: ['*'], routes: ['pii'] },
        ],
      },
    ],
    upstreams: [{ name: 'data-api', url: upstream.url, identity_assertion: true }],
    routes: [
      { id: 'reports', path: '/reports/*', upstream: 'data-api' },
      { id: 'pii', path: '/pii/*', upstream: 'data-api' },
      { id: 'agent-tools', path: '/agent-tools/*', upstream: 'data-api' },
      { id: 'limited', path: '/limited/*', upstream: 'data-api', limits: ['per-agent'] },
    ],
    limits: [{ name: 'per-agent', key: 'actor', rate: '3/m' }],
    token_exchange: {
      issuer: ISSUER,
      audiences: [ISSUER, MCP_AUDIENCE],
      lifetime: '10m',
      actors: [{ role: 'agent', delegated_roles: ['analyst'] }],
    },
    audit: { sinks: [{ type: 'sqlite', path: db }], spill_dir: join(dir, 'spill'), flush_interval: '20ms' },
    admin: { token: ADMIN_TOKEN },
  }
  gw = await startTestGateway(gatewayConfig)
  await waitFor(() => gw.state.runtime.issuerKeys.get('corp')?.state === 'ready', 'the issuer keys', 20_000)
  const tokens = await Promise.all(['alice-app', 'reports-agent', 'second-agent', 'rogue-agent'].map((c) => idp.token(c)))
  ;[alice, agent, secondAgent, rogue] = tokens as [string, string, string, string]
}, 60_000)

afterAll(async () => {
  await gw?.close()
  await upstream?.close()
  await idp?.stop()
  if (dir) await rm(dir, { recursive: true, force: true })
})

/** A token request as a form, as RFC 8693 §2.1 has it, alice's token with the agent acting; `null` leaves a default parameter out. */
function exchange(params: Record<string, string | null>, options: { contentType?: string; body?: string; requestId?: string } = {}): Promise<TokenAnswer> {
  return postTokenRequest(gw.url, options.body ?? tokenForm({ subject: alice, actor: agent, params }), options)
}

function exchanged(params: Record<string, string | null> = {}): Promise<string> {
  return exchangedAt(gw.url, { subject: alice, actor: agent, params })
}

async function call(path: string, token: string, requestId?: string) {
  const res = await request(`${gw.url}${path}`, { headers: { authorization: `Bearer ${token}`, ...(requestId ? { 'x-request-id': requestId } : {}) } })
  return { status: res.statusCode, body: (await res.body.json()) as { code?: string; detail?: string; headers?: Record<string, string> } }
}

const auditRecord = (requestId: string): Promise<AuditRecord> => waitForAuditRecord(db, requestId)

describe('the gateway as an authorization server (RFC 8414 metadata, its keys)', () => {
  it('publishes its metadata and the keys its tokens are signed with', async () => {
    const res = await request(`${gw.url}/.well-known/oauth-authorization-server`)
    expect(res.statusCode).toBe(200)
    expect(await res.body.json()).toMatchObject({
      issuer: ISSUER,
      token_endpoint: `${ISSUER}/oauth2/token`,
      jwks_uri: `${ISSUER}/oauth2/jwks`,
      grant_types_supported: [GRANT],
      scopes_supported: ['analyst'],
    })
    const jwks = await request(`${gw.url}/oauth2/jwks`)
    expect(jwks.statusCode).toBe(200)
    expect(jwks.headers['content-type']).toBe('application/jwk-set+json')
    const { keys } = (await jwks.body.json()) as { keys: Array<Record<string, string>> }
    expect(keys.length).toBeGreaterThan(0)
    for (const key of keys) {
      expect(key).toMatchObject({ kty: 'EC', crv: 'P-256', alg: 'ES256', use: 'sig' })
      expect(key.d).toBeUndefined() // never the private part
    }
  })

  it('answers 405 to other methods on its documents, and the token endpoint to GET', async () => {
    const metadata = await request(`${gw.url}/.well-known/oauth-authorization-server`, { method: 'POST' })
    expect(metadata.statusCode).toBe(405)
    expect(metadata.headers.allow).toBe('GET, HEAD')
    await metadata.body.dump()
    const token = await request(`${gw.url}/oauth2/token`)
    expect(token.statusCode).toBe(405)
    expect(token.headers.allow).toBe('POST')
    await token.body.dump()
  })
})

describe('POST /oauth2/token', () => {
  it('exchanges the user\'s token and the agent\'s for a short-lived token naming both (act, RFC 8693 §4.1)', async () => {
    const answer = await exchange({})
    expect(answer.status).toBe(200)
    expect(answer.headers['cache-control']).toBe('no-store')
    expect(answer.body).toMatchObject({ issued_token_type: ACCESS_TOKEN, token_type: 'Bearer', expires_in: 600, scope: 'analyst' })
    const token = answer.body.access_token as string
    expect(decodeProtectedHeader(token)).toMatchObject({ alg: 'ES256', typ: 'at+jwt' })
    // Verifiable by anyone with the published keys, as any OAuth token is.
    const { payload } = await jwtVerify(token, createRemoteJWKSet(new URL(`${gw.url}/oauth2/jwks`)), { issuer: ISSUER, audience: ISSUER })
    expect(payload).toMatchObject({
      sub: 'alice-app',
      roles: ['analyst'],
      client_id: 'reports-agent',
      idp: idp.issuer,
      tenant: 'acme', // the user's own claims come along, for statement conditions
      act: { sub: 'reports-agent', iss: idp.issuer, client_id: 'reports-agent', roles: ['agent'] },
    })
    expect((payload.exp as number) - (payload.iat as number)).toBe(600) // token_exchange.lifetime
  })

  it('names the token type it issued (issued_token_type): the JWT asked for, and refuses a type it cannot issue', async () => {
    // RFC 8693 §2.2.1: the token is an access token and a JWT; an answer naming another type than
    // the one asked for told a client that asked for a JWT it got something else (a probe).
    const jwt = await exchange({ requested_token_type: 'urn:ietf:params:oauth:token-type:jwt' })
    expect(jwt.status).toBe(200)
    expect(jwt.body).toMatchObject({ issued_token_type: 'urn:ietf:params:oauth:token-type:jwt', token_type: 'Bearer' })
    expect(decodeProtectedHeader(jwt.body.access_token as string)).toMatchObject({ typ: 'at+jwt' })
    expect((await exchange({ requested_token_type: ACCESS_TOKEN })).body).toMatchObject({ issued_token_type: ACCESS_TOKEN })
    const saml = await exchange({ requested_token_type: 'urn:ietf:params:oauth:token-type:saml2' })
    expect(saml).toMatchObject({ status: 400, body: { error: 'invalid_request' } })
    expect(saml.body.error_description).toMatch(/^requested_token_type 'urn:ietf:params:oauth:token-type:saml2' is not one the gateway issues/)
  })

  it('is audited: the record names the user, the agent and the roles granted; a refusal names its reason', async () => {
    expect((await exchange({ scope: 'analyst' }, { requestId: 'exchange-ok' })).status).toBe(200)
    expect(await auditRecord('exchange-ok')).toMatchObject({
      route: 'builtin/oauth-token', status: 200, decision: 'allow', subject: 'alice-app', actor: 'reports-agent', issuer: idp.issuer, roles: ['analyst'], credential: 'bearer',
    })
    expect((await exchange({ actor_token: rogue }, { requestId: 'exchange-refused' })).status).toBe(400)
    expect(await auditRecord('exchange-refused')).toMatchObject({
      route: 'builtin/oauth-token', status: 400, decision: 'deny', code: 'unauthorized_client', detail: expect.stringContaining('rogue-agent'),
    })
  })

  it('lives no longer than asked (expires_in), and never past the user\'s own token', async () => {
    const short = decodeJwt(await exchanged({ expires_in: '60' }))
    expect((short.exp as number) - (short.iat as number)).toBe(60)
    const exp = Math.floor(Date.now() / 1000) + 90
    const subject = await idp.mint({ sub: 'alice-app', client_id: 'alice-app', exp })
    const bounded = decodeJwt(await exchanged({ subject_token: subject }))
    expect(bounded.exp).toBe(exp)
    const never = await exchange({ expires_in: '0' })
    expect(never).toMatchObject({ status: 400, body: { error: 'invalid_request' } })
  })

  it('is for the audience asked, when token_exchange.audiences lists it (RFC 8707 resource too)', async () => {
    expect(decodeJwt(await exchanged({ audience: MCP_AUDIENCE })).aud).toBe(MCP_AUDIENCE)
    expect(decodeJwt(await exchanged({ resource: MCP_AUDIENCE })).aud).toBe(MCP_AUDIENCE)
    const other = await exchange({ audience: 'https://elsewhere.test' })
    expect(other.status).toBe(400)
    expect(other.headers['content-type']).toBe('application/json')
    expect(other.body.error).toBe('invalid_target')
    expect(other.body.error_description).toContain('token_exchange.audiences')
  })

  it('grants the requested roles that the user holds and the agent may act with, and refuses others (invalid_scope)', async () => {
    expect(decodeJwt(await exchanged({ scope: 'analyst' })).roles).toEqual(['analyst'])
    const notDelegated = await exchange({ scope: 'analyst reporter' })
    expect(notDelegated).toMatchObject({ status: 400, body: { error: 'invalid_scope' } })
    expect(notDelegated.body.error_description).toBe('Role \'reporter\' is not one agent \'reports-agent\' may act with (analyst).')
    const notHeld = await exchange({ scope: 'agent' })
    expect(notHeld).toMatchObject({ status: 400, body: { error: 'invalid_scope' } })
    expect(notHeld.body.error_description).toBe('Role \'agent\' is not one the user holds (analyst, reporter).')
    const long = await exchange({ scope: 'r'.repeat(5000) })
    expect(long.body.error_description).toBe(`Role '${'r'.repeat(64)}...(truncated, 5000 chars)' is not one the user holds (analyst, reporter).`)
  })

  it('refuses an agent no token_exchange.actors entry names (unauthorized_client)', async () => {
    const answer = await exchange({ actor_token: rogue })
    expect(answer).toMatchObject({ status: 400, body: { error: 'unauthorized_client' } })
    expect(answer.body.error_description).toContain('Agent \'rogue-agent\' (issuer \'corp\') may not act for users')
  })

  it('refuses an expired or forged subject token, and an exchanged one (invalid_grant, saying which token)', async () => {
    const expired = await exchange({ subject_token: await idp.mint({ sub: 'alice-app', exp: Math.floor(Date.now() / 1000) - 3600 }) })
    expect(expired).toMatchObject({ status: 400, body: { error: 'invalid_grant' } })
    expect(expired.body.error_description).toMatch(/^subject_token: The token expired at /)
    const forged = await exchange({ subject_token: await idp.mint({ sub: 'alice-app' }, { key: await signingKey('ec-1', 'ES256') }) })
    expect(forged).toMatchObject({ status: 400, body: { error: 'invalid_grant' } })
    expect(forged.body.error_description).toMatch(/^subject_token: The token's signature does not verify/)
    const badActor = await exchange({ actor_token: 'not-a-token' })
    expect(badActor).toMatchObject({ status: 400, body: { error: 'invalid_grant' } })
    expect(badActor.body.error_description).toMatch(/^actor_token: The token is not a well-formed JWT/)
    const again = await exchange({ subject_token: await exchanged() })
    expect(again).toMatchObject({ status: 400, body: { error: 'invalid_grant' } })
    expect(again.body.error_description).toContain('subject_token is a token the gateway issued by token exchange')
  })

  it('refuses a request without an actor_token when one is required, and malformed requests (invalid_request)', async () => {
    const cases: Array<[Record<string, string | null>, string, RegExp]> = [
      [{ actor_token: null, actor_token_type: null }, 'invalid_request', /^actor_token is missing/],
      [{ subject_token: null, subject_token_type: null }, 'invalid_request', /^subject_token is missing/],
      [{ subject_token_type: null }, 'invalid_request', /^subject_token_type is missing/],
      [{ actor_token_type: 'urn:ietf:params:oauth:token-type:saml2' }, 'invalid_request', /^actor_token_type 'urn:ietf:params:oauth:token-type:saml2' is not supported/],
      [{ grant_type: null }, 'invalid_request', /^grant_type is missing/],
      [{ grant_type: 'client_credentials' }, 'unsupported_grant_type', /^Only urn:ietf:params:oauth:grant-type:token-exchange/],
      [{ scope: '   ' }, 'invalid_scope', /^scope is empty/],
    ]
    for (const [params, error, description] of cases) {
      const answer = await exchange(params)
      expect(answer.status, JSON.stringify(params)).toBe(400)
      expect(answer.body.error, JSON.stringify(params)).toBe(error)
      expect(answer.body.error_description).toMatch(description)
    }
    const json = await exchange({}, { contentType: 'application/json', body: JSON.stringify({ grant_type: GRANT }) })
    expect(json).toMatchObject({ status: 400, body: { error: 'invalid_request' } })
    expect(json.body.error_description).toMatch(/Content-Type: application\/x-www-form-urlencoded/)
    const huge = await exchange({ subject_token: 'x'.repeat(70_000) })
    expect(huge).toMatchObject({ status: 400, body: { error: 'invalid_request', error_description: 'The token request is larger than 65536 bytes.' } })
    const twice = await exchange({}, { body: `grant_type=${encodeURIComponent(GRANT)}&scope=analyst&scope=reporter` })
    expect(twice).toMatchObject({ status: 400, body: { error: 'invalid_request', error_description: 'scope is given more than once (RFC 6749 section 3.1).' } })
    // RFC 8693 §2.1 allows several audience or resource parameters; a token for one target is what the gateway issues (§2.2.2).
    for (const target of ['audience', 'resource']) {
      const several = await exchange({}, { body: `grant_type=${encodeURIComponent(GRANT)}&${target}=a&${target}=b` })
      expect(several).toMatchObject({ status: 400, body: { error: 'invalid_target' } })
    }
  })
})

describe('on behalf of a user', () => {
  it('is allowed where both the user\'s and the agent\'s roles allow, with the assertion naming both', async () => {
    const token = await exchanged()
    const { status, body } = await call('/reports/daily', token, 'obo-allowed')
    expect(status).toBe(200)
    const assertion = decodeJwt(body.headers?.['x-bouncer-assertion'] as string)
    expect(assertion).toMatchObject({ aud: 'data-api', sub: 'alice-app', roles: ['analyst'], act: { sub: 'reports-agent', iss: idp.issuer, client_id: 'reports-agent' } })
    expect(await auditRecord('obo-allowed')).toMatchObject({
      status: 200, decision: 'allow', subject: 'alice-app', actor: 'reports-agent', credential: 'exchanged', issuer: ISSUER, roles: ['analyst'], statement: 'AnalystsRead',
    })
  })

  it('can be searched by the acting agent (bouncer audit --actor, GET /api/audit?actor=)', async () => {
    await call('/reports/by-second-agent', await exchanged({ actor_token: secondAgent }), 'obo-second-agent')
    await auditRecord('obo-second-agent')
    const res = await request(`${gw.adminUrl}/api/audit?actor=second-agent&route=reports`, { headers: { authorization: `Bearer ${ADMIN_TOKEN}` } })
    expect(res.statusCode).toBe(200)
    const records = (await res.body.json()) as AuditRecord[]
    expect(records.map((r) => r.request_id)).toContain('obo-second-agent')
    expect(new Set(records.map((r) => r.actor))).toEqual(new Set(['second-agent']))
  })

  it('is denied where only the user may: the explanation says the agent\'s roles denied', async () => {
    expect((await call('/pii/customers', alice)).status).toBe(200) // the user, directly
    const { status, body } = await call('/pii/customers', await exchanged(), 'obo-agent-denied')
    expect(status).toBe(403)
    expect(body.code).toBe('policy_denied')
    expect(body.detail).toBe('Agent "reports-agent" acting for "alice-app" is denied by the agent\'s roles: Statement "AgentsNoPii" of policy "agents" denies GET on route "pii".')
    expect(await auditRecord('obo-agent-denied')).toMatchObject({ status: 403, decision: 'deny', subject: 'alice-app', actor: 'reports-agent', statement: 'AgentsNoPii', code: 'policy_denied' })
  })

  it('is denied where only the agent may: the explanation says the user\'s roles denied', async () => {
    expect((await call('/agent-tools/run', agent)).status).toBe(200) // the agent, directly
    const { status, body } = await call('/agent-tools/run', await exchanged(), 'obo-user-denied')
    expect(status).toBe(403)
    expect(body.detail).toBe('"alice-app", for whom agent "reports-agent" acts, is denied by the user\'s roles: No statement allows GET on route "agent-tools" for role analyst.')
    expect(await auditRecord('obo-user-denied')).toMatchObject({ status: 403, subject: 'alice-app', actor: 'reports-agent' })
  })

  it('holds for another issuer\'s token naming an actor too: the agent\'s roles come from its trust rules', async () => {
    const delegated = await idp.mint({ sub: 'alice-app', act: { sub: 'reports-agent' } }) // act.iss: the token's own issuer
    expect((await call('/reports/daily', delegated, 'idp-obo-allowed')).status).toBe(200)
    expect(await auditRecord('idp-obo-allowed')).toMatchObject({ subject: 'alice-app', actor: 'reports-agent', credential: 'bearer', roles: ['analyst', 'reporter'] })
    const denied = await call('/pii/customers', delegated)
    expect(denied.status).toBe(403)
    expect(denied.body.detail).toMatch(/^Agent "reports-agent" acting for "alice-app" is denied by the agent's roles: Statement "AgentsNoPii"/)
    // An actor no trust rule knows holds no role: the deny on its side wins.
    const stranger = await call('/reports/daily', await idp.mint({ sub: 'alice-app', act: { sub: 'unknown-bot' } }))
    expect(stranger).toMatchObject({ status: 403, body: { code: 'no_role' } })
    expect(stranger.body.detail).toBe('Agent "unknown-bot" acting for "alice-app" is denied by the agent\'s roles: the agent holds no role.')
    const malformed = await call('/reports/daily', await idp.mint({ sub: 'alice-app', act: 'reports-agent' }))
    expect(malformed).toMatchObject({ status: 401, body: { code: 'malformed_token' } })
    // Such a token is not exchanged again: its delegation would be lost.
    const again = await exchange({ subject_token: delegated })
    expect(again).toMatchObject({ status: 400, body: { error: 'invalid_grant', error_description: 'subject_token already names an actor (act): exchange the user\'s own token' } })
  })

  it('is explained as it is decided (POST /api/explain): the same side denies', async () => {
    const explainFor = async (path: string, token: string) => {
      const res = await request(`${gw.adminUrl}/api/explain`, {
        method: 'POST',
        headers: { authorization: `Bearer ${ADMIN_TOKEN}`, 'content-type': 'application/json' },
        body: JSON.stringify({ method: 'GET', path, token }),
      })
      expect(res.statusCode).toBe(200)
      return ((await res.body.json()) as { decision: { effect: string; code: string | null; reason: string } }).decision
    }
    const token = await exchanged()
    expect(await explainFor('/reports/daily', token)).toMatchObject({ effect: 'allow' })
    const pii = await explainFor('/pii/customers', token)
    expect(pii).toMatchObject({ effect: 'deny', code: 'policy_denied' })
    expect(pii.reason).toContain('Agent "reports-agent" acting for "alice-app" is denied by the agent\'s roles')
    const delegated = await explainFor('/pii/customers', await idp.mint({ sub: 'alice-app', act: { sub: 'reports-agent' } }))
    expect(delegated.reason).toContain('is denied by the agent\'s roles')
  })

  it('keeps working across a reload (the key kept in memory is kept)', async () => {
    const token = await exchanged()
    expect((await gw.reload()).ok).toBe(true)
    expect((await call('/reports/after-reload', token)).status).toBe(200)
  })

  it('keeps its key when a reload turns the exchange off and the next turns it on again', async () => {
    const token = await exchanged()
    const kid = decodeProtectedHeader(token).kid
    await gw.writeConfig({ ...gatewayConfig, token_exchange: { ...gatewayConfig.token_exchange, enabled: false } })
    expect((await gw.reload()).ok).toBe(true)
    expect((await call('/reports/while-off', token)).status).toBe(401) // a disabled exchange trusts none of its tokens
    await gw.writeConfig(gatewayConfig)
    expect((await gw.reload()).ok).toBe(true)
    // Before, the key lived in the runtime that had the exchange on: the flap made a new one.
    expect((await call('/reports/on-again', token)).status).toBe(200)
    expect(decodeProtectedHeader(await exchanged()).kid).toBe(kid)
  })

  it('is refused when the token is not one the gateway signed', async () => {
    const forged = await idp.mint({ iss: ISSUER, aud: ISSUER, sub: 'alice-app', roles: ['analyst'], act: { sub: 'reports-agent', iss: idp.issuer } })
    const { status, body } = await call('/reports/daily', forged)
    expect(status).toBe(401)
    expect(['key_not_found', 'algorithm_not_allowed', 'signature_invalid']).toContain(body.code)
  })
})

describe('limits keyed by the agent (key: actor)', () => {
  it('throttle one agent without spending another\'s budget for the same user', async () => {
    const first = await exchanged({ scope: 'analyst' })
    for (let i = 0; i < 3; i++) expect((await call('/limited/x', first)).status).toBe(200)
    const throttled = await call('/limited/x', first)
    expect(throttled.status).toBe(429)
    expect(throttled.body.code).toBe('rate_limited')
    const second = await exchanged({ actor_token: secondAgent })
    expect(decodeJwt(second).sub).toBe('alice-app') // the same user…
    expect((await call('/limited/x', second)).status).toBe(200) // …through another agent, with its own budget
  })

  it('count a caller without an actor by its principal', async () => {
    for (let i = 0; i < 3; i++) expect((await call('/limited/y', alice)).status).toBe(200)
    expect((await call('/limited/y', alice)).status).toBe(429)
  })
})

describe('the signing key an operator keeps (token_exchange.signing.key)', () => {
  const config = (enabled: boolean) => ({
    secrets: { store: { type: 'env', prefix: 'EXCHANGE_TEST_SECRET_' } },
    issuers: [{ name: 'corp', issuer: idp.issuer, audiences: [AUDIENCE] }],
    roles: [{ name: 'anyone', assumed_by: [{ issuer: 'corp' }], policies: ['read'] }],
    policies: [{ name: 'read', statements: [{ effect: 'allow', actions: ['GET'], routes: ['reports'] }] }],
    upstreams: [{ name: 'data-api', url: upstream.url }],
    routes: [{ id: 'reports', path: '/reports/*', upstream: 'data-api' }],
    token_exchange: { enabled, issuer: ISSUER, require_actor: false, actors: [{ role: 'anyone', delegated_roles: ['*'] }], signing: { key: '${secret:sts-signing-key}' } },
  })

  it('signs with the PEM key in the secrets store, and a disabled exchange has no endpoints and trusts none of its tokens', async () => {
    const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' })
    const env = { EXCHANGE_TEST_SECRET_STS_SIGNING_KEY: privateKey.export({ format: 'pem', type: 'pkcs8' }) as string }
    const withKey = await startTestGateway(config(true), { env })
    let token: string
    try {
      await waitFor(() => withKey.state.runtime.issuerKeys.get('corp')?.state === 'ready', 'the issuer keys', 20_000)
      token = await exchangedAt(withKey.url, { subject: alice, actor: agent })
      await jwtVerify(token, publicKey, { issuer: ISSUER, audience: ISSUER }) // the operator's key signed it
      expect((await request(`${withKey.url}/reports/a`, { headers: { authorization: `Bearer ${token}` } })).statusCode).toBe(200)
      // require_actor: false — a user may narrow their own token: no act, the user's own client.
      const own = await exchangeAt(withKey.url, { subject: alice, params: { expires_in: '30' } })
      expect(own.status).toBe(200)
      const narrowed = decodeJwt(own.body.access_token as string)
      expect(narrowed).toMatchObject({ sub: 'alice-app', client_id: 'alice-app', roles: ['anyone'] })
      expect(narrowed.act).toBeUndefined()
      expect((narrowed.exp as number) - (narrowed.iat as number)).toBe(30)
    } finally {
      await withKey.close()
    }
    const disabled = await startTestGateway(config(false), { env })
    try {
      await waitFor(() => disabled.state.runtime.issuerKeys.get('corp')?.state === 'ready', 'the issuer keys', 20_000)
      for (const path of ['/oauth2/token', '/oauth2/jwks', '/.well-known/oauth-authorization-server']) {
        const res = await request(`${disabled.url}${path}`)
        expect(res.statusCode, path).toBe(404)
        await res.body.dump()
      }
      const res = await request(`${disabled.url}/reports/a`, { headers: { authorization: `Bearer ${token}` } })
      expect(res.statusCode).toBe(401)
      expect(((await res.body.json()) as { code: string }).code).toBe('issuer_unknown')
    } finally {
      await disabled.close()
    }
  })

  it('keeps the key it signed with published when a reload moves to the operator\'s key, until its tokens expire', async () => {
    // Found running docs/ai-agents.md: moving from the gateway's own key to signing.key refused at once
    // every token the old key had signed (401 key_not_found), though they had minutes to live.
    const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' })
    const env = { EXCHANGE_TEST_SECRET_STS_SIGNING_KEY: privateKey.export({ format: 'pem', type: 'pkcs8' }) as string }
    const { signing: _signing, ...ownKey } = config(true).token_exchange
    const moving = await startTestGateway({ ...config(true), token_exchange: ownKey }, { env })
    const exchangedAtMoving = () => exchangedAt(moving.url, { subject: alice, actor: agent })
    const callAt = async (token: string) => {
      const res = await request(`${moving.url}/reports/a`, { headers: { authorization: `Bearer ${token}` } })
      return { status: res.statusCode, body: (await res.body.json()) as { code?: string } }
    }
    const kids = async () => ((await (await request(`${moving.url}/oauth2/jwks`)).body.json()) as { keys: Array<{ kid: string }> }).keys.map((k) => k.kid)
    try {
      await waitFor(() => moving.state.runtime.issuerKeys.get('corp')?.state === 'ready', 'the issuer keys', 20_000)
      const before = await exchangedAtMoving()
      const oldKid = decodeProtectedHeader(before).kid as string
      expect((await callAt(before)).status).toBe(200)
      await moving.writeConfig(config(true))
      expect((await moving.reload()).ok).toBe(true)
      const after = await exchangedAtMoving()
      await jwtVerify(after, publicKey, { issuer: ISSUER, audience: ISSUER }) // the operator's key signs now
      expect(await kids()).toEqual([decodeProtectedHeader(after).kid, oldKid])
      expect(await callAt(before)).toMatchObject({ status: 200 }) // was 401 key_not_found
      expect((await callAt(after)).status).toBe(200)
    } finally {
      await moving.close()
    }
  })

  it('refuses to start with a secret that is not an EC P-256 private key', async () => {
    const rsa = generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey.export({ format: 'pem', type: 'pkcs8' }) as string
    await expect(startTestGateway(config(true), { env: { EXCHANGE_TEST_SECRET_STS_SIGNING_KEY: rsa } }))
      .rejects.toThrow(/token_exchange\.signing\.key: secret sts-signing-key in the env secrets store does not hold an EC P-256 private key/)
  })
})
