// Found by an adversarial probe (helper): an opaque token whose introspection answer names an actor (`act`, the provider's own on-behalf-of token) was decided and audited as the user alone, an `act` naming nobody was not refused, and such a token could be exchanged again at /oauth2/token, losing the delegation.
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { request } from 'undici'
import { afterAll, beforeAll, expect, it } from 'vitest'
import type { AuditRecord } from '../../src/audit/record.ts'
import { exchange, ISSUER } from '../helpers/exchange.ts'
import { startTestGateway, type TestGateway } from '../helpers/gateway.ts'
import { answerJson, startIntrospectionEndpoint, type TestIntrospectionEndpoint } from '../helpers/introspection-endpoint.ts'
import { startUpstream, type TestUpstream } from '../helpers/upstream.ts'
import { waitForAuditRecord } from '../helpers/audit.ts'

const LEGACY = 'https://legacy.test'
const AUD = 'api://legacy'

let endpoint: TestIntrospectionEndpoint
let upstream: TestUpstream
let gw: TestGateway
let dir: string
let db: string

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'introspected-act-'))
  db = join(dir, 'audit.db')
  endpoint = await startIntrospectionEndpoint()
  upstream = await startUpstream()
  const legacy = (subject: string) => ({ issuer: 'legacy', subject })
  gw = await startTestGateway({
    // No jwks_uri: the issuer only introspects, so the agent act names is one of its own.
    issuers: [{ name: 'legacy', issuer: LEGACY, audiences: [AUD], introspection: { url: endpoint.url, client_id: 'bouncer', client_secret: 'bouncer-secret', cache: '60s' } }],
    roles: [
      { name: 'reader', assumed_by: [legacy('alice')], policies: ['readers'] },
      { name: 'agent', assumed_by: [legacy('agent-*')], policies: ['agents'] },
    ],
    policies: [
      { name: 'readers', statements: [{ sid: 'ReadersRead', effect: 'allow', actions: ['GET'], routes: ['reports', 'pii'] }] },
      {
        name: 'agents',
        statements: [
          { sid: 'AgentsRead', effect: 'allow', actions: ['GET'], routes: ['reports'] },
          { sid: 'AgentsNoPii', effect: 'deny', actions: ['*'], routes: ['pii'] },
        ],
      },
    ],
    upstreams: [{ name: 'api', url: upstream.url }],
    routes: [
      { id: 'reports', path: '/reports/*', upstream: 'api' },
      { id: 'pii', path: '/pii/*', upstream: 'api' },
    ],
    token_exchange: { issuer: ISSUER, lifetime: '10m', require_actor: false, actors: [{ role: 'agent', delegated_roles: ['reader'] }] },
    audit: { sinks: [{ type: 'sqlite', path: db }], spill_dir: join(dir, 'spill'), flush_interval: '20ms' },
  })
  const soon = Math.floor(Date.now() / 1000) + 3600
  endpoint.answers.set('opaque-alone', answerJson({ active: true, sub: 'alice', aud: AUD, exp: soon }))
  endpoint.answers.set('opaque-for-agent', answerJson({ active: true, sub: 'alice', aud: AUD, exp: soon, act: { sub: 'agent-1' } }))
  endpoint.answers.set('opaque-for-stranger', answerJson({ active: true, sub: 'alice', aud: AUD, exp: soon, act: { sub: 'unknown-bot' } }))
  endpoint.answers.set('opaque-for-nobody', answerJson({ active: true, sub: 'alice', aud: AUD, exp: soon, act: { client_id: 'no-sub' } }))
  endpoint.answers.set('opaque-agent-own', answerJson({ active: true, sub: 'agent-1', aud: AUD, exp: soon }))
}, 60_000)

afterAll(async () => {
  await gw?.close()
  await upstream?.close()
  await endpoint?.close()
  if (dir) await rm(dir, { recursive: true, force: true })
})

async function call(path: string, token: string, requestId?: string) {
  const res = await request(`${gw.url}${path}`, { headers: { authorization: `Bearer ${token}`, ...(requestId ? { 'x-request-id': requestId } : {}) } })
  return { status: res.statusCode, body: (await res.body.json()) as { code?: string; detail?: string } }
}

const auditRecord = (requestId: string): Promise<AuditRecord> => waitForAuditRecord(db, requestId)

it('decides an introspected token naming an agent for both, the agent\'s roles from the trust rules, and audits both', async () => {
  expect((await call('/pii/customers', 'opaque-alone')).status).toBe(200) // the user alone may
  const reports = await call('/reports/daily', 'opaque-for-agent', 'introspected-act-reports')
  expect(reports.status).toBe(200)
  const pii = await call('/pii/customers', 'opaque-for-agent')
  expect(pii.status).toBe(403)
  expect(pii.body.detail).toContain('Agent "agent-1" acting for "alice" is denied by the agent\'s roles')
  expect(await auditRecord('introspected-act-reports')).toMatchObject({ subject: 'alice', actor: 'agent-1', credential: 'bearer', status: 200 })
})

it('denies an introspected token whose agent no trust rule names: the agent holds no role', async () => {
  const res = await call('/reports/daily', 'opaque-for-stranger')
  expect(res.status).toBe(403)
  expect(res.body.code).toBe('no_role')
})

it('refuses an introspected token whose act names nobody, as a JWT\'s: 401 malformed_token', async () => {
  const res = await call('/reports/daily', 'opaque-for-nobody')
  expect({ status: res.status, code: res.body.code }).toEqual({ status: 401, code: 'malformed_token' })
})

it('does not exchange an introspected token naming an agent again, as subject or as actor', async () => {
  const asSubject = await exchange(gw.url, { subject: 'opaque-for-agent' })
  expect(asSubject.status).toBe(400)
  expect(asSubject.body.error).toBe('invalid_grant')
  expect(asSubject.body.error_description).toContain('already names an actor')
  const asActor = await exchange(gw.url, { subject: 'opaque-alone', actor: 'opaque-for-agent' })
  expect(asActor.status).toBe(400)
  expect(asActor.body.error).toBe('invalid_grant')
  // The agent's own token still acts for the user.
  expect((await exchange(gw.url, { subject: 'opaque-alone', actor: 'opaque-agent-own' })).status).toBe(200)
})
