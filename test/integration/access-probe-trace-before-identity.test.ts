// Found by the access probe (helper): a request the gateway refused before it read any credential —
// its Origin not one the route's cors allows (403 cors_origin_denied), its body over
// server.max_body_bytes (413) — was explained again by the console's trace and the Denials page as
// a request without a token: "it would be 401 missing_token: … the config has likely changed since",
// though nothing had changed and no credential or policy was ever looked at.
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { request } from 'undici'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { ExplainedDenial, Trace } from '../../src/admin/console-shapes.ts'
import type { AuditRecord } from '../../src/audit/fields.ts'
import { closeAll, waitForAuditRecords } from '../helpers/browser.ts'
import { startTestGateway, type TestGateway } from '../helpers/gateway.ts'
import { AUDIENCE, startIdentityProvider, type TestIdentityProvider } from '../helpers/identity-provider.ts'
import { startUpstream, type TestUpstream } from '../helpers/upstream.ts'
import { waitFor } from '../helpers/wait.ts'

const ADMIN = 'access-probe-trace-before-id-admin-1'
let idp: TestIdentityProvider
let upstream: TestUpstream
let gateway: TestGateway
let dir: string

async function admin<T>(path: string): Promise<T> {
  const res = await request(`${gateway.adminUrl}/api/${path}`, { headers: { authorization: `Bearer ${ADMIN}` } })
  const body = (await res.body.json()) as T
  expect(res.statusCode, JSON.stringify(body)).toBe(200)
  return body
}

async function traceOf(code: string): Promise<Trace> {
  const { records } = await admin<{ records: AuditRecord[] }>('audit/page?since=15m&limit=50')
  const record = records.find((r) => r.code === code)
  if (!record) throw new Error(`no record of ${code}`)
  return admin<Trace>(`audit/trace?id=${encodeURIComponent(record.id)}&time=${encodeURIComponent(record.time)}`)
}

beforeAll(async () => {
  idp = await startIdentityProvider()
  upstream = await startUpstream()
  dir = await mkdtemp(join(tmpdir(), 'bouncer-trace-before-id-'))
  gateway = await startTestGateway({
    server: { max_body_bytes: 1024 },
    admin: { token: ADMIN },
    audit: { sinks: [{ type: 'sqlite', path: join(dir, 'audit.db') }], flush_interval: '10ms', spill_dir: join(dir, 'spill') },
    telemetry: { log_level: 'silent' },
    issuers: [{ name: 'corp', issuer: idp.issuer, audiences: [AUDIENCE] }],
    roles: [{ name: 'staff', assumed_by: [{ issuer: 'corp' }], policies: ['all'] }],
    policies: [{ name: 'all', statements: [{ sid: 'All', effect: 'allow', actions: ['*'], routes: ['*'] }] }],
    upstreams: [{ name: 'svc', url: upstream.url }],
    routes: [{ id: 'items', methods: ['GET', 'POST'], path: '/items', upstream: 'svc', cors: { origins: ['https://ok.example'], methods: ['GET'] } }],
  })
  await waitFor(() => gateway.state.runtime.issuerKeys.get('corp')?.state === 'ready', 'keys')
  const token = await idp.mint({ sub: 'user-1' })
  const cors = await request(`${gateway.url}/items`, { headers: { authorization: `Bearer ${token}`, origin: 'https://evil.example', 'access-control-request-method': 'GET' }, method: 'OPTIONS' })
  await cors.body.dump()
  const big = await request(`${gateway.url}/items`, { method: 'POST', headers: { authorization: `Bearer ${token}`, 'content-type': 'application/octet-stream' }, body: Buffer.alloc(4096) })
  await big.body.dump()
  expect([cors.statusCode, big.statusCode]).toEqual([403, 413])
  await waitForAuditRecords(gateway.adminUrl, ADMIN, 2)
}, 60_000)

afterAll(() => closeAll(gateway, upstream, idp, () => rm(dir, { recursive: true, force: true })))

describe('a request refused before any credential was read, explained again', () => {
  for (const code of ['cors_origin_denied', 'payload_too_large']) {
    it(`is shown as refused before its credential (${code}), not as a missing token under a changed config`, async () => {
      const trace = await traceOf(code)
      expect(trace.recorded).toMatchObject({ decision: 'deny', code })
      expect(trace.explanation.decision).toMatchObject({ effect: 'deny', code })
      expect(trace.explanation.decision.reason).toMatch(/^Refused before any identity was established/)
      expect(trace.explained_under).toMatchObject({ agrees: true, disagrees: null })
      expect(trace.explained_under.because).not.toContain('config_changed')
    })
  }

  it('the Denials page says the same', async () => {
    const denials = await admin<ExplainedDenial[]>('denials?since=15m')
    for (const code of ['cors_origin_denied', 'payload_too_large']) {
      const group = denials.find((d) => d.code === code)
      expect(group?.explanation, code).toMatchObject({ effect: 'deny', code })
      expect(group?.explained_under.agrees, code).toBe(true)
    }
  })
})
