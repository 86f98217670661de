// The access probe (helper) asked what `issuer` and `client_id` mean in the records of a token
// exchange and of a call made with the exchanged token, which the README did not say: held here as
// it now says — the presented token's, as for any token (the gateway's issuer and the agent's client
// for the call; the user's provider and client for the exchange, where the tokens traded were).
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { request } from 'undici'
import { afterAll, beforeAll, expect, it } from 'vitest'
import { exchange, ISSUER } from '../helpers/exchange.ts'
import { waitForAuditRecord } from '../helpers/audit.ts'
import { startTestGateway, type TestGateway } from '../helpers/gateway.ts'
import { AUDIENCE, startIdentityProvider, type TestIdentityProvider } from '../helpers/identity-provider.ts'
import { startUpstream, type TestUpstream } from '../helpers/upstream.ts'
import { waitFor } from '../helpers/wait.ts'

let dir: string
let db: string
let idp: TestIdentityProvider
let upstream: TestUpstream
let gw: TestGateway

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'acx2-audit-'))
  db = join(dir, 'audit.db')
  idp = await startIdentityProvider({
    clients: [
      { clientId: 'alice-app', secret: 'alice-app-secret-0123456789abcdef' },
      { clientId: 'reports-agent', secret: 'reports-agent-secret-0123456789ab' },
    ],
  })
  upstream = await startUpstream()
  gw = await startTestGateway({
    issuers: [{ name: 'corp', issuer: idp.issuer, audiences: [AUDIENCE] }],
    roles: [
      { name: 'analyst', assumed_by: [{ issuer: 'corp', subject: 'alice-app' }], policies: ['read'] },
      { name: 'agent', assumed_by: [{ issuer: 'corp', subject: 'reports-agent' }], policies: ['read'] },
    ],
    policies: [{ name: 'read', statements: [{ sid: 'Read', effect: 'allow', actions: ['GET'], routes: ['reports'] }] }],
    upstreams: [{ name: 'data-api', url: upstream.url }],
    routes: [{ id: 'reports', path: '/reports/*', upstream: 'data-api' }],
    token_exchange: { issuer: ISSUER, lifetime: '10m', actors: [{ role: 'agent', delegated_roles: ['analyst'] }] },
    audit: { sinks: [{ type: 'sqlite', path: db }], spill_dir: join(dir, 'spill'), flush_interval: '20ms' },
  })
  await waitFor(() => gw.state.runtime.issuerKeys.get('corp')?.state === 'ready', 'keys')
})

afterAll(async () => {
  await gw?.close()
  await upstream?.close()
  await idp?.stop()
  if (dir) await rm(dir, { recursive: true, force: true })
})

it('records the presented token\'s issuer and client: the user\'s at the exchange, the gateway\'s and the agent\'s on the call', async () => {
  const alice = await idp.token('alice-app')
  const agent = await idp.token('reports-agent')
  const answer = await exchange(gw.url, { subject: alice, actor: agent, requestId: 'acx2-exchange' })
  expect(answer.status).toBe(200)
  const res = await request(`${gw.url}/reports/a`, { headers: { authorization: `Bearer ${answer.body.access_token}`, 'x-request-id': 'acx2-call' } })
  await res.body.dump()
  expect(res.statusCode).toBe(200)
  expect(await waitForAuditRecord(db, 'acx2-exchange')).toMatchObject({
    route: 'builtin/oauth-token', status: 200, issuer: idp.issuer, subject: 'alice-app', client_id: 'alice-app', actor: 'reports-agent', credential: 'bearer', roles: ['analyst'],
  })
  expect(await waitForAuditRecord(db, 'acx2-call')).toMatchObject({
    route: 'reports', status: 200, issuer: ISSUER, subject: 'alice-app', client_id: 'reports-agent', actor: 'reports-agent', credential: 'exchanged', roles: ['analyst'],
  })
})
