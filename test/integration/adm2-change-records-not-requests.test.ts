// The audit log holds the changes made through the admin API and the command line too (a key's
// revocation, `bouncer keys create`: chains `admin:<host>` and `cli:<host>`), beside the gateway's
// requests. The console's trace explained such a record as a request to the gateway ("would be 401
// issuer_unknown: the running config verifies no token of issuer admin … the config has likely
// changed"), and replay listed the revocation among the requests a draft would change (found by the
// admin probe). They are neither: the trace says what the record is, and replay leaves them out.
import { join } from 'node:path'
import { request } from 'undici'
import { stringify } from 'yaml'
import { afterAll, beforeAll, expect, it } from 'vitest'
import { runCliInProcess } from '../helpers/cli-in-process.ts'
import { allowAnyCaller, startTestGateway, type TestGateway } from '../helpers/gateway.ts'
import { AUDIENCE, startIdentityProvider, type TestIdentityProvider } from '../helpers/identity-provider.ts'
import { startUpstream, type TestUpstream } from '../helpers/upstream.ts'
import { waitFor } from '../helpers/wait.ts'

const ADMIN = 'adm2-change-records-admin-token-0123456789'
let idp: TestIdentityProvider
let upstream: TestUpstream
let gateway: TestGateway
let config: Record<string, unknown>
type Record_ = { id: string; time: string; method: string; path: string; instance: string }

async function api(path: string, init: { method?: 'GET' | 'POST' | 'DELETE'; body?: unknown } = {}) {
  const res = await request(`${gateway.adminUrl}/api/${path}`, {
    method: init.method ?? 'GET',
    headers: { authorization: `Bearer ${ADMIN}` },
    body: init.body === undefined ? undefined : JSON.stringify(init.body),
  })
  const text = await res.body.text()
  expect(res.statusCode, `${path}: ${text}`).toBe(200)
  return JSON.parse(text) as never
}

beforeAll(async () => {
  idp = await startIdentityProvider()
  upstream = await startUpstream()
  gateway = await startTestGateway((dir) => (config = {
    admin: { token: ADMIN },
    audit: { sinks: [{ type: 'sqlite', path: join(dir, 'audit.db') }], spill_dir: join(dir, 'spill'), flush_interval: '10ms' },
    api_keys: { store: { type: 'sqlite', path: join(dir, 'keys.db') } },
    issuers: [{ name: 'corp', issuer: idp.issuer, audiences: [AUDIENCE] }],
    ...allowAnyCaller(['corp']),
    upstreams: [{ name: 'api', url: upstream.url }],
    routes: [{ id: 'all', path: '/*', methods: ['*'], upstream: 'api' }],
  }))
  await waitFor(() => gateway.state.runtime.issuerKeys.get('corp')?.state === 'ready', 'the issuer keys')
  const created = await runCliInProcess(['keys', 'create', '--config', gateway.file, '--principal', 'reporter'])
  const id = /bk_([0-9a-f]{16})_/.exec(created.stdout)?.[1]
  expect(id, created.stderr).toBeDefined()
  await api(`keys/${id}`, { method: 'DELETE' })
  const res = await request(`${gateway.url}/data/1`, { headers: { authorization: `Bearer ${await idp.token('looker-reports')}` } })
  expect(res.statusCode).toBe(200)
  await res.body.dump()
  await waitFor(async () => ((await api('audit')) as Record_[]).length === 3, 'the three records')
})

afterAll(async () => {
  await gateway?.close()
  await upstream?.close()
  await idp?.stop()
})

it('the trace of a change says it is one, and does not explain it as a request', async () => {
  const changes = ((await api('audit')) as Record_[]).filter((r) => /^(admin|cli):/.test(r.instance))
  expect(changes.map((r) => r.method).sort()).toEqual(['CLI', 'DELETE'])
  for (const record of changes) {
    const trace = (await api(`audit/trace?id=${record.id}&time=${encodeURIComponent(record.time)}`)) as {
      explanation: { decision: { effect: string; status: number; code: string | null; reason: string } }
      explained_under: { agrees: boolean; because: string[] }
    }
    expect(trace.explained_under, record.method).toMatchObject({ agrees: true, because: [] })
    expect(trace.explanation.decision, record.method).toMatchObject({ effect: 'allow', status: 200, code: null })
    expect(trace.explanation.decision.reason, record.method).toMatch(record.method === 'CLI' ? /change made from the command line/ : /change made through the admin API/)
  }
})

it('replay leaves the changes out: only the gateway\'s requests are decided again', async () => {
  const draft = stringify({ ...config, routes: [{ id: 'reports', path: '/reports/*', methods: ['*'], upstream: 'api' }] })
  const replayed = (await api('replay', { method: 'POST', body: { config: draft } })) as { distinct: number; changes: Array<{ method: string; path: string }> }
  expect(replayed.changes.map((c) => `${c.method} ${c.path}`)).toEqual(['GET /data/1'])
  expect(replayed.distinct).toBe(1)
})
