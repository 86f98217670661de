// The console's decision trace, its Denials page, replay and POST /api/explain explain a client
// certificate's request as the gateway decided it. A record of a client_cert caller keeps the CA's
// DN as its issuer and the certificate's URI SAN or CN as its subject: a probe found all four
// reading those as a bearer token's claims — the trace of a 200 said "401 client_cert_required: the
// request carries a bearer token" (issuer unknown), and a replay saw no change in a draft that took
// a workload's role away, as every client_cert record was "refused" under both configs.
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Agent, request } from 'undici'
import { stringify } from 'yaml'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { ExplainedDenial, ReplayResult, Trace } from '../../src/admin/console-shapes.ts'
import type { AuditRecord } from '../../src/audit/fields.ts'
import type { Explanation } from '../../src/gateway/explanation-shapes.ts'
import { closeAll, waitForAuditRecords } from '../helpers/browser.ts'
import { createPki, type Issued, type TestCa, type TestPki } from '../helpers/certs.ts'
import { startTestGateway, withDefaults, type TestGateway } from '../helpers/gateway.ts'
import { startUpstream, type TestUpstream } from '../helpers/upstream.ts'

const ADMIN_TOKEN = 'console-client-cert-admin-token-0123456789'

let pki: TestPki
let partnerCa: TestCa
let upstream: TestUpstream
let gateway: TestGateway
let dir: string

function config(partnerSubject: string): Record<string, unknown> {
  return {
    server: { tls: { cert: pki.server.cert, key: pki.server.key, client_ca: join(dir, 'client-ca.pem'), client_auth: 'optional' } },
    admin: { token: ADMIN_TOKEN },
    audit: { sinks: [{ type: 'sqlite', path: join(dir, 'audit.db') }], flush_interval: '10ms', spill_dir: join(dir, 'spill') },
    telemetry: { log_level: 'silent' },
    issuers: [
      { name: 'mesh', type: 'x509', ca: pki.ca.cert },
      { name: 'partner', type: 'x509', ca: partnerCa.cert },
    ],
    roles: [
      { name: 'etl', assumed_by: [{ issuer: 'mesh', subject: 'spiffe://prod/ns/etl/*' }], policies: ['read'] },
      { name: 'partners', assumed_by: [{ issuer: 'partner', subject: partnerSubject }], policies: ['read'] },
    ],
    policies: [{ name: 'read', statements: [{ sid: 'Read', effect: 'allow', actions: ['GET'], routes: ['data', 'tokens'] }] }],
    upstreams: [{ name: 'api', url: upstream.url }],
    routes: [
      { id: 'data', path: '/data/*', upstream: 'api', accept: ['client_cert'] },
      { id: 'tokens', path: '/tokens/*', upstream: 'api' },
    ],
  }
}

async function get(path: string, cert: Issued): Promise<number> {
  const agent = new Agent({ connect: { ca: await readFile(pki.ca.cert), servername: 'localhost', cert: await readFile(cert.cert), key: await readFile(cert.key) } })
  try {
    const res = await request(`${gateway.url}${path}`, { dispatcher: agent })
    await res.body.dump()
    return res.statusCode
  } finally {
    await agent.close()
  }
}

async function admin<T>(path: string, body?: unknown): Promise<T> {
  const res = await request(`${gateway.adminUrl}/api/${path}`, {
    method: body === undefined ? 'GET' : 'POST',
    headers: { authorization: `Bearer ${ADMIN_TOKEN}`, 'content-type': 'application/json' },
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
  })
  const answer = (await res.body.json()) as T
  expect(res.statusCode, JSON.stringify(answer)).toBe(200)
  return answer
}

async function traceOf(subject: string): Promise<Trace> {
  const { records } = await admin<{ records: AuditRecord[] }>('audit/page?since=15m&limit=50')
  const record = records.find((r) => r.subject === subject)
  if (!record) throw new Error(`no record of ${subject}`)
  expect(record.credential).toBe('client_cert')
  return admin<Trace>(`audit/trace?id=${encodeURIComponent(record.id)}&time=${encodeURIComponent(record.time)}`)
}

beforeAll(async () => {
  pki = createPki()
  partnerCa = pki.newCa('Partner CA')
  dir = await mkdtemp(join(tmpdir(), 'bouncer-console-cert-'))
  await writeFile(join(dir, 'client-ca.pem'), Buffer.concat([await readFile(pki.ca.cert), await readFile(partnerCa.cert)]))
  upstream = await startUpstream()
  gateway = await startTestGateway(config('spiffe://partner/*'))
  const statuses = [
    await get('/data/daily', pki.ca.issue('loader', { usage: 'client', san: ['URI:spiffe://prod/ns/etl/sa/loader'] })),
    await get('/data/daily', partnerCa.issue('partner', { usage: 'client', san: ['URI:spiffe://partner/reports'] })),
    await get('/data/daily', pki.ca.issue('reporter', { usage: 'client', san: ['URI:spiffe://prod/ns/reports/sa/reporter'] })),
  ]
  expect(statuses).toEqual([200, 200, 403])
  await waitForAuditRecords(gateway.adminUrl, ADMIN_TOKEN, statuses.length)
}, 120_000)

afterAll(() => closeAll(gateway, upstream, () => rm(dir, { recursive: true, force: true }), async () => pki?.close()))

describe('a client certificate\'s recorded request', () => {
  it('is traced as the certificate of its x509 issuer, allowed as it was', async () => {
    const trace = await traceOf('spiffe://prod/ns/etl/sa/loader')
    expect(trace.recorded).toMatchObject({ decision: 'allow', status: 200, statement: 'Read', roles: ['etl'] })
    expect(trace.explanation.identity).toMatchObject({ issuer: 'mesh', iss: 'CN=Test CA, O=Bouncer tests', sub: 'spiffe://prod/ns/etl/sa/loader', problems: [] })
    expect(trace.explanation.decision).toMatchObject({ effect: 'allow', status: 200, statement: 'Read' })
    expect(trace.explained_under).toMatchObject({ agrees: true, disagrees: null, because: [] })
  })

  it('is told apart by its issuer when two x509 issuers split client_ca', async () => {
    const trace = await traceOf('spiffe://partner/reports')
    expect(trace.explanation.identity).toMatchObject({ issuer: 'partner', iss: 'CN=Partner CA, O=Bouncer tests' })
    expect(trace.explanation.roles.find((r) => r.role === 'partners')).toMatchObject({ held: true })
    expect(trace.explained_under.agrees).toBe(true)
  })

  it('is a no_role on the Denials page, with a simulation that says it was a client certificate', async () => {
    const groups = await admin<ExplainedDenial[]>('denials?since=15m')
    const group = groups.find((g) => g.principal === 'spiffe://prod/ns/reports/sa/reporter') as ExplainedDenial
    expect(group.explanation).toMatchObject({ status: 403, code: 'no_role' })
    expect(group.explained_under.agrees).toBe(true)
    expect(group.simulate).toMatchObject({ credential: 'client_cert', claims: { sub: 'spiffe://prod/ns/reports/sa/reporter', iss: 'CN=Test CA, O=Bouncer tests' } })
    // The simulator posts it back as it is: the same answer.
    const again = await admin<Explanation>('explain', group.simulate)
    expect(again.decision).toMatchObject({ status: 403, code: 'no_role' })
  })

  it('is explained by POST /api/explain as a client certificate, refused where the route takes bearer tokens only', async () => {
    const claims = { iss: 'CN=Test CA, O=Bouncer tests', sub: 'spiffe://prod/ns/etl/sa/loader' }
    const allowed = await admin<Explanation>('explain', { method: 'GET', path: '/data/x', credential: 'client_cert', claims })
    expect(allowed.decision).toMatchObject({ effect: 'allow', statement: 'Read' })
    const refused = await admin<Explanation>('explain', { method: 'GET', path: '/tokens/x', credential: 'client_cert', claims })
    expect(refused.decision).toMatchObject({ status: 401, code: 'missing_token', reason: expect.stringMatching(/carries a client certificate/) })
  })

  it('is replayed: a draft that takes a workload\'s role away changes that request, and no other', async () => {
    const draft = stringify(withDefaults(config('spiffe://partner/other-*'), dir))
    const result = await admin<ReplayResult>('replay', { config: draft, hours: 1 })
    if (!result.ok) throw new Error(result.errors.join('\n'))
    expect(result.changes.map((c) => [c.principal, c.before.effect, c.after.code])).toEqual([['spiffe://partner/reports', 'allow', 'no_role']])
  })
})
