// Found by the access probe (helper): a POST refused for the method its `_method` named (in the
// query, a form body or a JSON body) was explained again by the console's trace, the Denials page
// and replay as the bare POST — the record keeps neither the query nor the body — so the trace said
// "it would be allowed … the config has likely changed since" beside a 403 under an unchanged config,
// and a draft allowing the named method was replayed as no change.
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { request } from 'undici'
import { stringify } from 'yaml'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { ExplainedDenial, ReplayResult, Trace } from '../../src/admin/console-shapes.ts'
import type { AuditRecord } from '../../src/audit/fields.ts'
import { closeAll, waitForAuditRecords } from '../helpers/browser.ts'
import { startTestGateway, withDefaults, type TestGateway } from '../helpers/gateway.ts'
import { AUDIENCE, startIdentityProvider, type TestIdentityProvider } from '../helpers/identity-provider.ts'
import { startUpstream, type TestUpstream } from '../helpers/upstream.ts'
import { waitFor } from '../helpers/wait.ts'

const ADMIN = 'access-probe-trace-override-admin-01'
let idp: TestIdentityProvider
let upstream: TestUpstream
let gateway: TestGateway
let dir: string

function config(writes: string[]): Record<string, unknown> {
  return {
    admin: { token: ADMIN },
    audit: { sinks: [{ type: 'sqlite', path: join(dir, 'audit.db') }], flush_interval: '10ms', spill_dir: join(dir, 'spill') },
    telemetry: { log_level: 'silent' },
    issuers: [{ name: 'corp', issuer: idp.issuer, audiences: [AUDIENCE] }],
    roles: [{ name: 'editor', assumed_by: [{ issuer: 'corp', subject: 'user-*' }], policies: ['edit'] }],
    policies: [{ name: 'edit', statements: [{ sid: 'EditItems', effect: 'allow', actions: writes, routes: ['items'] }] }],
    upstreams: [{ name: 'svc', url: upstream.url }],
    routes: [{ id: 'items', methods: ['GET', 'POST', 'DELETE'], path: '/items/:id', upstream: 'svc' }],
  }
}

async function admin<T>(path: string, init: { method?: 'GET' | 'POST'; body?: unknown } = {}): Promise<T> {
  const res = await request(`${gateway.adminUrl}/api/${path}`, {
    method: init.method ?? 'GET',
    headers: { authorization: `Bearer ${ADMIN}`, ...(init.body === undefined ? {} : { 'content-type': 'application/json' }) },
    ...(init.body === undefined ? {} : { body: JSON.stringify(init.body) }),
  })
  const body = (await res.body.json()) as T
  expect(res.statusCode, JSON.stringify(body)).toBe(200)
  return body
}

async function traceOf(path: string, subject: string): Promise<Trace> {
  const { records } = await admin<{ records: AuditRecord[] }>('audit/page?since=15m&limit=50')
  const record = records.find((r) => r.path === path && r.subject === subject)
  if (!record) throw new Error(`no record of ${path} by ${subject}`)
  return admin<Trace>(`audit/trace?id=${encodeURIComponent(record.id)}&time=${encodeURIComponent(record.time)}`)
}

beforeAll(async () => {
  idp = await startIdentityProvider()
  upstream = await startUpstream()
  dir = await mkdtemp(join(tmpdir(), 'bouncer-trace-override-'))
  gateway = await startTestGateway(config(['GET', 'POST']))
  await waitFor(() => gateway.state.runtime.issuerKeys.get('corp')?.state === 'ready', 'keys')
  const post = async (path: string, user: string, body?: { type: string; text: string }) => {
    const res = await request(`${gateway.url}${path}`, {
      method: 'POST',
      headers: { authorization: `Bearer ${await idp.mint({ sub: user })}`, ...(body ? { 'content-type': body.type } : {}) },
      body: body?.text ?? '',
    })
    await res.body.dump()
    return res.statusCode
  }
  const statuses = [
    await post('/items/1?_method=DELETE', 'user-query'),
    await post('/items/2', 'user-form', { type: 'application/x-www-form-urlencoded', text: 'title=x&_method=DELETE' }),
    await post('/items/3', 'user-json', { type: 'application/json', text: '{"title":"x","_method":"DELETE"}' }),
    await post('/items/4', 'user-plain'),
  ]
  expect(statuses).toEqual([403, 403, 403, 200])
  await waitForAuditRecords(gateway.adminUrl, ADMIN, statuses.length)
}, 60_000)

afterAll(() => closeAll(gateway, upstream, idp, () => rm(dir, { recursive: true, force: true })))

describe('a POST refused for the method its _method named, explained again', () => {
  for (const [path, user] of [['/items/1', 'user-query'], ['/items/2', 'user-form'], ['/items/3', 'user-json']] as const) {
    it(`agrees with the record (${user})`, async () => {
      const trace = await traceOf(path, user)
      expect(trace.recorded).toMatchObject({ status: 403, code: 'policy_denied' })
      expect(trace.recorded.detail).toMatch(/asks for DELETE/)
      expect(trace.explanation.decision).toMatchObject({ effect: 'deny', status: 403, code: 'policy_denied' })
      expect(trace.explanation.decision.reason).toContain(trace.recorded.detail as string)
      expect(trace.explained_under).toMatchObject({ agrees: true, disagrees: null, because: [] })
    })
  }

  it('a plain POST is still explained as one', async () => {
    const trace = await traceOf('/items/4', 'user-plain')
    expect(trace.explanation.decision).toMatchObject({ effect: 'allow', statement: 'EditItems' })
    expect(trace.explained_under.agrees).toBe(true)
  })

  it('the Denials page agrees with them, and simulates the method they named', async () => {
    const denials = await admin<ExplainedDenial[]>('denials?since=15m')
    expect(denials.map((d) => [d.principal, d.simulate.path, d.explanation.code, d.explained_under.agrees]).sort()).toEqual([
      ['user-form', '/items/2?_method=DELETE', 'policy_denied', true],
      ['user-json', '/items/3?_method=DELETE', 'policy_denied', true],
      ['user-query', '/items/1?_method=DELETE', 'policy_denied', true],
    ])
  })

  it('replay lists them when a draft allows the method they named', async () => {
    const result = await admin<ReplayResult>('replay', { method: 'POST', body: { config: stringify(withDefaults(config(['GET', 'POST', 'DELETE']), dir)), hours: 1 } })
    if (!result.ok) throw new Error(JSON.stringify(result))
    const changed = result.changes.map((c) => `${c.path} ${c.principal} ${c.before.code} → ${c.after.effect}`).sort()
    expect(changed).toEqual(['/items/1 user-query policy_denied → allow', '/items/2 user-form policy_denied → allow', '/items/3 user-json policy_denied → allow'])
  })
})
