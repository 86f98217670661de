// explain checks the kind of credential against the route's `accept` as the authenticator does
// (identity/authenticate.ts), and applies a token's claim checks only to what a token carries:
// claims of the sign-in provider explained as a session get none of them (a session keeps no exp,
// nbf or iat, and its aud is the sign-in's client). The end-to-end comparison with a real gateway
// is test/integration/explain-credentials.test.ts.
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { loadConfigText } from '../../../src/config/index.ts'
import { compileRuntime, createRuntimeDeps, explain, type Runtime } from '../../../src/gateway/index.ts'
import { createLogger } from '../../../src/telemetry/logger.ts'

const SSO = 'https://sso.example.com/'
let dir: string
let runtime: Runtime
let deps: ReturnType<typeof createRuntimeDeps>

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'bouncer-explain-unit-'))
  const text = `
admin: { token: explain-unit-admin-token-0123456789 }
issuers:
  - { name: sso, issuer: "${SSO}", jwks_uri: "https://sso.example.com/jwks", audiences: ["api://bouncer"] }
sign_in: { issuer: sso, client_id: portal, client_secret: portal-secret-0123456789abcdef }
api_keys: { store: { type: sqlite, path: "${join(dir, 'keys.db')}" }, header: X-Key }
roles:
  - { name: people, assumed_by: [{ issuer: sso }, { issuer: api-keys }], policies: [all] }
policies:
  - { name: all, statements: [{ sid: All, effect: allow, actions: ['*'], routes: ['*'] }] }
upstreams: [{ name: api, url: "http://127.0.0.1:9" }]
routes:
  - { id: portal, path: /portal/*, upstream: api, accept: [session] }
  - { id: either, path: /either/*, upstream: api, accept: [session, bearer] }
  - { id: keyed, path: /keyed/*, upstream: api, accept: [api_key] }
  - { id: api, path: /api/*, upstream: api }
audit: { sinks: [] }
`
  const loaded = loadConfigText(text, join(dir, 'bouncer.yaml'), {})
  expect(loaded.diagnostics.filter((d) => d.severity === 'error')).toEqual([])
  deps = createRuntimeDeps(createLogger({ level: 'silent' }), { offline: true })
  runtime = compileRuntime(loaded.config!, deps)
})

afterAll(async () => {
  await deps?.closeAll()
  if (dir) await rm(dir, { recursive: true, force: true })
})

const at = (path: string, given: { claims?: Record<string, unknown>; token?: string } = {}) => explain(runtime, { method: 'GET', path, ...given }).decision
const now = () => Math.floor(Date.now() / 1000)

describe('the route\'s accept', () => {
  it('nothing given: the route\'s first kind says what is missing', () => {
    expect(at('/portal/x')).toMatchObject({ status: 401, code: 'session_required' })
    expect(at('/keyed/x')).toMatchObject({ status: 401, code: 'missing_token' })
    expect(at('/keyed/x').reason).toContain('needs an API key (X-Key: bk_…')
    expect(at('/api/x').reason).toContain('needs a bearer token')
  })

  it('the sign-in provider\'s claims on a session-only route are a session\'s: no token checks (its aud is the client)', () => {
    const claims = { iss: SSO, sub: 'alice', aud: 'portal', exp: now() - 3600 }
    expect(at('/portal/x', { claims })).toMatchObject({ effect: 'allow', status: 200 })
    // Where bearer tokens are taken too, they are explained as one, and a token with them is refused.
    expect(at('/either/x', { claims })).toMatchObject({ status: 401, code: 'token_expired' })
    expect(at('/api/x', { claims: { iss: SSO, sub: 'alice', aud: 'portal' } })).toMatchObject({ status: 401, code: 'audience_mismatch' })
  })

  it('a bearer token on a session-only route is refused as the session verifier refuses', () => {
    const token = `${b64({ alg: 'RS256', typ: 'at+jwt' })}.${b64({ iss: SSO, sub: 'alice', aud: 'api://bouncer', exp: now() + 300 })}.c2ln`
    const decision = at('/portal/x', { token })
    expect(decision).toMatchObject({ status: 401, code: 'session_required' })
    expect(decision.reason).toContain('carries a bearer token, which this route does not accept (accept: session)')
  })

  it('an API key given as the token, without its store read (explain, not explainWithKeys), is not taken on trust', () => {
    const key = `bk_${'0'.repeat(16)}_${'1'.repeat(64)}`
    expect(at('/keyed/x', { token: key })).toMatchObject({ status: 503, code: 'identity_provider_unavailable' })
    expect(at('/api/x', { token: key })).toMatchObject({ status: 401, code: 'missing_token' })
  })
})

describe('claims written by hand', () => {
  it('are refused for what a token is refused for before any key: an iss that is no string, nesting too deep', () => {
    expect(at('/api/x', { claims: { iss: 7, sub: 'alice' } })).toMatchObject({ status: 401, code: 'claim_missing' })
    let deep: unknown = 'x'
    for (let i = 0; i < 40; i++) deep = [deep]
    expect(at('/api/x', { claims: { iss: SSO, sub: 'alice', deep } })).toMatchObject({ status: 401, code: 'malformed_token' })
  })

  it('without exp or aud are a shorthand, explained', () => {
    expect(at('/api/x', { claims: { iss: SSO, sub: 'alice' } })).toMatchObject({ effect: 'allow' })
    expect(at('/api/x', { claims: { sub: 'alice' } })).toMatchObject({ effect: 'allow' })
  })
})

function b64(value: object): string {
  return Buffer.from(JSON.stringify(value)).toString('base64url')
}
