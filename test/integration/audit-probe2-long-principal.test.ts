// A subject longer than the record keeps (256 characters: a client's value, bounded) is stored cut,
// with its full length said: searching for that principal as the token names it — the only way an
// operator knows it — must still find its records, as the console and bouncer audit promise.
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { request } from 'undici'
import { afterAll, beforeAll, expect, it } from 'vitest'
import type { AuditRecord } from '../../src/audit/index.ts'
import { waitForAuditRecord } from '../helpers/audit.ts'
import { runCliInProcess } from '../helpers/cli-in-process.ts'
import { startTestGateway, type TestGateway } from '../helpers/gateway.ts'
import { AUDIENCE, startIdentityProvider, type TestIdentityProvider } from '../helpers/identity-provider.ts'
import { startUpstream, type TestUpstream } from '../helpers/upstream.ts'
import { waitFor } from '../helpers/wait.ts'

const ADMIN = 'audit-probe2-long-principal-admin-token'
let dir: string
let idp: TestIdentityProvider
let upstream: TestUpstream
let gateway: TestGateway

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'bouncer-audit-probe2-principal-'))
  idp = await startIdentityProvider()
  upstream = await startUpstream(async (_req, res) => {
    res.end('ok')
  })
  gateway = await startTestGateway({
    admin: { token: ADMIN },
    audit: { sinks: [{ type: 'sqlite', path: join(dir, 'audit.db') }], spill_dir: join(dir, 'spill'), flush_interval: '10ms' },
    issuers: [{ name: 'corp', issuer: idp.issuer, audiences: [AUDIENCE] }],
    roles: [{ name: 'svc', assumed_by: [{ issuer: 'corp', subject: 'spiffe://*' }], policies: ['read'] }],
    policies: [{ name: 'read', statements: [{ sid: 'Read', effect: 'allow', actions: ['GET'], routes: ['data'] }] }],
    upstreams: [{ name: 'api', url: upstream.url }],
    routes: [{ id: 'data', path: '/data/*', upstream: 'api' }],
  })
  await waitFor(() => gateway.state.runtime.issuerKeys.get('corp')?.state === 'ready', 'keys')
})
afterAll(async () => {
  await gateway.close()
  await upstream.close()
  await idp.stop()
  await rm(dir, { recursive: true, force: true })
})

it('a principal longer than the record keeps is found by its whole name', async () => {
  const sub = `spiffe://prod.example.org/ns/payments/sa/${'settlement-reconciler-'.repeat(12)}`
  expect(sub.length).toBeGreaterThan(256)
  const res = await request(`${gateway.url}/data/x`, { headers: { authorization: `Bearer ${await idp.mint({ sub })}`, 'x-request-id': 'long-sub-1' } })
  await res.body.dump()
  expect(res.statusCode).toBe(200)
  const record = await waitForAuditRecord(join(dir, 'audit.db'), 'long-sub-1')
  expect(record.subject).toContain(`(truncated, ${sub.length} chars)`)

  const api = await request(`${gateway.adminUrl}/api/audit?principal=${encodeURIComponent(sub)}`, { headers: { authorization: `Bearer ${ADMIN}` } })
  expect(api.statusCode).toBe(200)
  expect(((await api.body.json()) as AuditRecord[]).map((r) => r.request_id)).toEqual(['long-sub-1'])

  // As the log shows it, cut, it is found too (what README told an operator to search by).
  const cut = await request(`${gateway.adminUrl}/api/audit?principal=${encodeURIComponent(record.subject as string)}`, { headers: { authorization: `Bearer ${ADMIN}` } })
  expect(((await cut.body.json()) as AuditRecord[]).map((r) => r.request_id)).toEqual(['long-sub-1'])

  // The console's figures for that principal count it too.
  const overview = await request(`${gateway.adminUrl}/api/overview?principal=${encodeURIComponent(sub)}`, { headers: { authorization: `Bearer ${ADMIN}` } })
  expect(overview.statusCode).toBe(200)
  expect(((await overview.body.json()) as { totals: { requests: number } }).totals.requests).toBe(1)

  const cli = await runCliInProcess(['audit', '--json', '--principal', sub, '--config', gateway.file])
  expect(cli.stdout.split('\n').filter(Boolean).map((line) => (JSON.parse(line) as AuditRecord).request_id)).toEqual(['long-sub-1'])
})
