// Found by the access probe (helper): explain of an opaque token (an issuer that introspects) said
// "401 malformed_token: The token is not a well-formed JWT" — a refusal the gateway never gives such
// a token: it asks the issuer's introspection endpoint, and allowed the same request 200 (or refused
// it for what the answer said). POST /api/explain now asks as the gateway does; bouncer explain,
// offline, says it did not ask rather than calling the token malformed.
import { request } from 'undici'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { Explanation } from '../../src/gateway/explain.ts'
import { runCliInProcess } from '../helpers/cli-in-process.ts'
import { explainAt, startTestGateway, type TestGateway } from '../helpers/gateway.ts'
import { answerJson, startIntrospectionEndpoint, type TestIntrospectionEndpoint } from '../helpers/introspection-endpoint.ts'
import { startUpstream, type TestUpstream } from '../helpers/upstream.ts'

const ADMIN = 'access-probe-opaque-explain-admin-012'
const READER = 'access-probe-opaque-explain-reader-01'
const LEGACY = 'https://legacy.test'
const AUD = 'api://legacy'
let endpoint: TestIntrospectionEndpoint
let upstream: TestUpstream
let gw: TestGateway

beforeAll(async () => {
  endpoint = await startIntrospectionEndpoint()
  upstream = await startUpstream()
  gw = await startTestGateway({
    admin: { token: ADMIN, read_token: READER },
    issuers: [{ name: 'legacy', issuer: LEGACY, audiences: [AUD], introspection: { url: endpoint.url, client_id: 'bouncer', client_secret: 'bouncer-secret', cache: '60s' } }],
    roles: [
      { name: 'reader', assumed_by: [{ issuer: 'legacy', subject: 'alice' }], policies: ['readers'] },
      { name: 'agent', assumed_by: [{ issuer: 'legacy', subject: 'agent-*' }], policies: ['agents'] },
    ],
    policies: [
      { name: 'readers', statements: [{ sid: 'ReadersRead', effect: 'allow', actions: ['GET'], routes: ['reports', 'pii'] }] },
      { name: 'agents', statements: [{ sid: 'AgentsRead', effect: 'allow', actions: ['GET'], routes: ['reports'] }, { sid: 'AgentsNoPii', effect: 'deny', actions: ['*'], routes: ['pii'] }] },
    ],
    upstreams: [{ name: 'api', url: upstream.url }],
    routes: [{ id: 'reports', path: '/reports', upstream: 'api' }, { id: 'pii', path: '/pii', upstream: 'api' }],
  })
  const soon = Math.floor(Date.now() / 1000) + 3600
  endpoint.answers.set('opaque-alice', answerJson({ active: true, sub: 'alice', aud: AUD, exp: soon }))
  endpoint.answers.set('opaque-for-agent', answerJson({ active: true, sub: 'alice', aud: AUD, exp: soon, act: { sub: 'agent-1' } }))
}, 60_000)

afterAll(async () => {
  await gw?.close()
  await upstream?.close()
  await endpoint?.close()
})

const explain = (path: string, token: string, as = ADMIN): Promise<Explanation> => explainAt(gw, as, { method: 'GET', path, token })

async function real(path: string, token: string): Promise<{ status: number; code: string | null; detail?: string }> {
  const res = await request(`${gw.url}${path}`, { headers: { authorization: `Bearer ${token}` } })
  const text = await res.body.text()
  const body = res.statusCode === 200 ? null : (JSON.parse(text) as { code: string; detail: string })
  return { status: res.statusCode, code: body?.code ?? null, ...(body ? { detail: body.detail } : {}) }
}

describe('an opaque token, explained', () => {
  it('is introspected by POST /api/explain as the gateway introspects it, and decided the same', async () => {
    for (const [path, token] of [['/reports', 'opaque-alice'], ['/pii', 'opaque-for-agent'], ['/reports', 'opaque-revoked']] as const) {
      const answer = await real(path, token)
      const e = await explain(path, token)
      expect({ status: e.decision.status, code: e.decision.code }, `${token} on ${path}: ${e.decision.reason}`).toEqual({ status: answer.status, code: answer.code })
      if (answer.detail !== undefined) expect(e.decision.reason).toContain(answer.detail)
    }
    const allowed = await explain('/reports', 'opaque-alice')
    expect(allowed.identity).toMatchObject({ issuer: 'legacy', iss: LEGACY, sub: 'alice', problems: [] })
    expect(allowed.decision).toMatchObject({ effect: 'allow', statement: 'ReadersRead' })
    expect((await explain('/pii', 'opaque-for-agent')).identity?.actor).toMatchObject({ sub: 'agent-1', roles: ['agent'] })
  })

  it('is not asked about for a read-only credential: whether a token is live, and whose, is a secret test', async () => {
    endpoint.answers.set('opaque-unseen', answerJson({ active: true, sub: 'alice', aud: AUD, exp: Math.floor(Date.now() / 1000) + 3600 }))
    const e = await explain('/reports', 'opaque-unseen', READER)
    expect(e.decision).toMatchObject({ status: 503, code: 'identity_provider_unavailable' })
    expect(e.decision.reason).toMatch(/did not ask/)
    expect(endpoint.asked).not.toContain('opaque-unseen')
  })

  it('is not called malformed by bouncer explain, which asks no provider offline', async () => {
    const result = await runCliInProcess(['explain', '--config', gw.file, '--method', 'GET', '--path', '/reports', '--token', 'opaque-alice', '--json'], { env: { BOUNCER_ADMIN_TOKEN: ADMIN } })
    expect(result.code, result.stderr).toBe(1)
    const e = JSON.parse(result.stdout) as Explanation
    expect(e.decision.code).toBe('identity_provider_unavailable')
    expect(e.decision.reason).toMatch(/not a JWT: the gateway asks issuer "legacy" about it at its introspection endpoint/)
    expect(e.decision.reason).not.toMatch(/malformed/)
  })
})
