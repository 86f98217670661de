// Found by an adversarial probe (helper): a token exchange refused after both tokens verified (an agent no actors entry names, a role the agent may not act with) was audited with subject and actor null, so the audit could not say which agent tried to act for whom.
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, expect, it } from 'vitest'
import type { AuditRecord } from '../../src/audit/record.ts'
import { exchange as exchangeAt, ISSUER } from '../helpers/exchange.ts'
import { startTestGateway, type TestGateway } from '../helpers/gateway.ts'
import { AUDIENCE, startIdentityProvider, type TestIdentityProvider } from '../helpers/identity-provider.ts'
import { startUpstream, type TestUpstream } from '../helpers/upstream.ts'
import { waitFor } from '../helpers/wait.ts'
import { waitForAuditRecord } from '../helpers/audit.ts'

let dir: string
let db: string
let idp: TestIdentityProvider
let upstream: TestUpstream
let gw: TestGateway
let alice: string
let agent: string
let rogue: string

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'exchange-refusal-audit-'))
  db = join(dir, 'audit.db')
  idp = await startIdentityProvider({
    clients: [
      { clientId: 'alice-app', secret: 'alice-app-secret-0123456789abcdef' },
      { clientId: 'reports-agent', secret: 'reports-agent-secret-0123456789ab' },
      { clientId: 'rogue-agent', secret: 'rogue-agent-secret-0123456789abcd' },
    ],
  })
  upstream = await startUpstream()
  const corp = (subject: string) => ({ issuer: 'corp', subject })
  gw = await startTestGateway({
    issuers: [{ name: 'corp', issuer: idp.issuer, audiences: [AUDIENCE] }],
    roles: [
      { name: 'analyst', assumed_by: [corp('alice-app')], policies: ['read'] },
      { name: 'reporter', assumed_by: [corp('alice-app')], policies: ['read'] },
      { name: 'agent', assumed_by: [corp('reports-agent')], policies: ['read'] },
      { name: 'rogue', assumed_by: [corp('rogue-agent')], policies: ['read'] },
    ],
    policies: [{ name: 'read', statements: [{ sid: 'Read', effect: 'allow', actions: ['GET'], routes: ['reports'] }] }],
    upstreams: [{ name: 'data-api', url: upstream.url }],
    routes: [{ id: 'reports', path: '/reports/*', upstream: 'data-api' }],
    token_exchange: { issuer: ISSUER, lifetime: '10m', actors: [{ role: 'agent', delegated_roles: ['analyst'] }] },
    audit: { sinks: [{ type: 'sqlite', path: db }], spill_dir: join(dir, 'spill'), flush_interval: '20ms' },
  })
  await waitFor(() => gw.state.runtime.issuerKeys.get('corp')?.state === 'ready', 'the issuer keys', 20_000)
  ;[alice, agent, rogue] = (await Promise.all(['alice-app', 'reports-agent', 'rogue-agent'].map((c) => idp.token(c)))) as [string, string, string]
}, 60_000)

afterAll(async () => {
  await gw?.close()
  await upstream?.close()
  await idp?.stop()
  if (dir) await rm(dir, { recursive: true, force: true })
})

async function exchange(requestId: string, params: Record<string, string>): Promise<{ status: number; error?: string }> {
  const { status, body } = await exchangeAt(gw.url, { subject: alice, actor: agent, params, requestId })
  return { status, error: body.error }
}

const auditRecord = (requestId: string): Promise<AuditRecord> => waitForAuditRecord(db, requestId)

it('names the user and the agent that tried in the record of a refused exchange, with no role granted', async () => {
  expect(await exchange('refused-rogue', { actor_token: rogue })).toEqual({ status: 400, error: 'unauthorized_client' })
  expect(await exchange('refused-scope', { scope: 'reporter' })).toEqual({ status: 400, error: 'invalid_scope' })
  const records = [await auditRecord('refused-rogue'), await auditRecord('refused-scope')]
  expect(records.map((r) => ({ status: r.status, code: r.code, decision: r.decision, subject: r.subject, actor: r.actor, credential: r.credential, roles: r.roles }))).toEqual([
    { status: 400, code: 'unauthorized_client', decision: 'deny', subject: 'alice-app', actor: 'rogue-agent', credential: 'bearer', roles: [] },
    { status: 400, code: 'invalid_scope', decision: 'deny', subject: 'alice-app', actor: 'reports-agent', credential: 'bearer', roles: [] },
  ])
})

it('names nobody when a token did not verify: no one was proved to be asking', async () => {
  expect(await exchange('refused-forged', { actor_token: `${agent.slice(0, -4)}AAAA` })).toMatchObject({ status: 400, error: 'invalid_grant' })
  expect(await auditRecord('refused-forged')).toMatchObject({ code: 'invalid_grant', subject: null, actor: null, credential: null })
})
