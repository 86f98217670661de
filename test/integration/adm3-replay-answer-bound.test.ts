// POST /api/replay listed every distinct recorded request whose decision the draft changes, each with
// both verdicts and their reasons: a draft that refuses a popular route over a busy window answered
// with up to 100,000 changes (tens of MB of JSON, built whole in the gateway's memory, then the
// console's), where the first screen is all anyone reads (found by the admin probe). The answer lists
// the REPLAY_MAX_CHANGES that matter most (refusals first, then the most requests) and says how many
// there were in all.
import { join } from 'node:path'
import { request } from 'undici'
import { stringify } from 'yaml'
import { afterAll, beforeAll, expect, it } from 'vitest'
import { REPLAY_MAX_CHANGES } from '../../src/admin/replay.ts'
import { copyFirstRecord, waitForAuditRecord } from '../helpers/audit.ts'
import { allowAnyCaller, startTestGateway, type TestGateway } from '../helpers/gateway.ts'
import { AUDIENCE, startIdentityProvider, type TestIdentityProvider } from '../helpers/identity-provider.ts'
import { startUpstream, type TestUpstream } from '../helpers/upstream.ts'
import { waitFor } from '../helpers/wait.ts'

const ADMIN = 'adm3-replay-bound-admin-token-0123456789'
const RECORDS = REPLAY_MAX_CHANGES + 500
let idp: TestIdentityProvider
let upstream: TestUpstream
let gateway: TestGateway
let config: Record<string, unknown>

beforeAll(async () => {
  idp = await startIdentityProvider()
  upstream = await startUpstream()
  gateway = await startTestGateway((dir) => (config = {
    admin: { token: ADMIN },
    audit: { sinks: [{ type: 'sqlite', path: join(dir, 'audit.db') }], spill_dir: join(dir, 'spill'), flush_interval: '10ms' },
    issuers: [{ name: 'corp', issuer: idp.issuer, audiences: [AUDIENCE] }],
    ...allowAnyCaller(['corp']),
    upstreams: [{ name: 'api', url: upstream.url }],
    routes: [{ id: 'reports', path: '/reports/*', upstream: 'api' }],
  }))
  await waitFor(() => gateway.state.runtime.issuerKeys.get('corp')?.state === 'ready', 'the issuer keys')
  const res = await request(`${gateway.url}/reports/1`, { headers: { authorization: `Bearer ${await idp.token('looker-reports')}` } })
  expect(res.statusCode).toBe(200)
  await res.body.dump()
  await waitForAuditRecord(join(gateway.dir, 'audit.db'), String(res.headers['x-request-id']))
  copyFirstRecord(join(gateway.dir, 'audit.db'), RECORDS, { distinctPaths: true })
}, 30_000)

afterAll(async () => {
  await gateway?.close()
  await upstream?.close()
  await idp?.stop()
})

it('a draft that changes more decisions than are listed answers with the first of them, and how many there are', async () => {
  // No role for anyone: every recorded request would be refused.
  const draft = stringify({ ...config, roles: [{ name: 'others', assumed_by: [{ issuer: 'corp', subject: 'nobody' }], policies: ['allow-all'] }] })
  const res = await request(`${gateway.adminUrl}/api/replay`, { method: 'POST', headers: { authorization: `Bearer ${ADMIN}` }, body: JSON.stringify({ config: draft }) })
  const answer = (await res.body.json()) as { ok: boolean; distinct: number; changes: Array<{ after: { code: string } }>; changes_total: number; changes_truncated: boolean }
  expect(res.statusCode).toBe(200)
  expect(answer.distinct).toBe(RECORDS)
  expect(answer.changes).toHaveLength(REPLAY_MAX_CHANGES)
  expect(answer.changes_total).toBe(RECORDS)
  expect(answer.changes_truncated).toBe(true)
  expect(answer.changes[0]?.after.code).toBe('no_role')
}, 60_000)
