// Found by an adversarial probe (helper): an introspection answer whose UTF-8 was split across two chunks lost its characters (sub "josé" read as "jos\uFFFD\uFFFD"), a claim of the wrong kind in the answer (exp as a string) was a 401 blamed on the caller instead of the provider's 503, and an `iss` that is not a string (an array naming another issuer) was taken as if absent.
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { request } from 'undici'
import { afterAll, beforeAll, expect, it } from 'vitest'
import type { AuditRecord } from '../../src/audit/record.ts'
import { searchAudit } from '../../src/audit/search.ts'
import { startTestGateway, type TestGateway } from '../helpers/gateway.ts'
import { answerJson, startIntrospectionEndpoint, type TestIntrospectionEndpoint } from '../helpers/introspection-endpoint.ts'
import { startUpstream, type TestUpstream } from '../helpers/upstream.ts'
import { waitFor } from '../helpers/wait.ts'

const LEGACY = 'https://legacy.test'
const AUD = 'api://legacy'

let endpoint: TestIntrospectionEndpoint
let upstream: TestUpstream
let gw: TestGateway
let dir: string
let db: string

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'introspection-answer-shape-'))
  db = join(dir, 'audit.db')
  endpoint = await startIntrospectionEndpoint()
  upstream = await startUpstream()
  gw = await startTestGateway({
    issuers: [{ name: 'legacy', issuer: LEGACY, audiences: [AUD], introspection: { url: endpoint.url, client_id: 'bouncer', client_secret: 'bouncer-secret', cache: '60s', negative_cache: '60s' } }],
    roles: [{ name: 'reader', assumed_by: [{ issuer: 'legacy', subject: '*' }], policies: ['read'] }],
    policies: [{ name: 'read', statements: [{ sid: 'Read', effect: 'allow', actions: ['GET'], routes: ['reports'] }] }],
    upstreams: [{ name: 'api', url: upstream.url }],
    routes: [{ id: 'reports', path: '/reports/*', upstream: 'api' }],
    audit: { sinks: [{ type: 'sqlite', path: db }], spill_dir: join(dir, 'spill'), flush_interval: '20ms' },
  })
}, 60_000)

afterAll(async () => {
  await gw?.close()
  await upstream?.close()
  await endpoint?.close()
  if (dir) await rm(dir, { recursive: true, force: true })
})

async function call(token: string, requestId?: string) {
  const res = await request(`${gw.url}/reports/daily`, { headers: { authorization: `Bearer ${token}`, ...(requestId ? { 'x-request-id': requestId } : {}) } })
  const text = await res.body.text()
  return { status: res.statusCode, body: (text.startsWith('{') ? JSON.parse(text) : {}) as { code?: string; detail?: string } }
}

const soon = () => Math.floor(Date.now() / 1000) + 3600

it('reads an answer whose UTF-8 is split across chunks whole: the subject keeps its characters', async () => {
  endpoint.answers.set('opaque-utf8', (res) => {
    const body = Buffer.from(JSON.stringify({ active: true, sub: 'josé', aud: AUD, exp: soon() }))
    const cut = body.indexOf(Buffer.from('é')) + 1 // between the two bytes of é
    res.writeHead(200, { 'content-type': 'application/json', 'content-length': body.length })
    res.socket?.setNoDelay(true)
    // The second part only once the first is on the wire: two chunks at the gateway.
    res.write(body.subarray(0, cut), () => setTimeout(() => res.end(body.subarray(cut)), 50))
  })
  expect((await call('opaque-utf8', 'answer-shape-utf8')).status).toBe(200)
  let record: AuditRecord | undefined
  await waitFor(async () => (record = (await searchAudit({ type: 'sqlite', path: db }, { limit: 50 }).catch(() => [])).find((r) => r.request_id === 'answer-shape-utf8')) !== undefined, 'the audit record')
  expect(record?.subject).toBe('josé')
})

it('counts the answer\'s size in bytes: 40,000 two-byte characters are more than 64 KB', async () => {
  endpoint.answers.set('opaque-wide', answerJson({ active: true, sub: 'alice', aud: AUD, exp: soon(), note: 'é'.repeat(40_000) }))
  const res = await call('opaque-wide')
  expect({ status: res.status, code: res.body.code }).toEqual({ status: 503, code: 'identity_provider_unavailable' })
  expect(res.body.detail).toContain('more than 65536 bytes')
})

it('answers 503 identity_provider_unavailable for a claim of the wrong kind in the answer, not 401', async () => {
  const cases: Array<[string, Record<string, unknown>]> = [
    ['exp-string', { exp: String(soon()) }],
    ['nbf-string', { nbf: 'yesterday' }],
    ['iat-object', { iat: { at: 1 } }],
    ['sub-number', { sub: 42, client_id: 'reports-app' }],
  ]
  for (const [name, claims] of cases) {
    endpoint.answers.set(`opaque-${name}`, answerJson({ active: true, sub: 'alice', aud: AUD, ...claims }))
    const res = await call(`opaque-${name}`)
    expect({ name, status: res.status, code: res.body.code }).toEqual({ name, status: 503, code: 'identity_provider_unavailable' })
    expect(res.body.detail, name).toContain('malformed claim')
  }
})

it('refuses an answer whose iss is not the issuer\'s string, whatever its kind: 401 issuer_unknown', async () => {
  for (const iss of [['https://evil.test'], [LEGACY], { iss: LEGACY }, 1, null]) {
    const token = `opaque-iss-${JSON.stringify(iss)}`
    endpoint.answers.set(token, answerJson({ active: true, iss, sub: 'alice', aud: AUD, exp: soon() }))
    const res = await call(token)
    expect({ iss, status: res.status, code: res.body.code }).toEqual({ iss, status: 401, code: 'issuer_unknown' })
  }
  // The issuer's own iss, or none, is taken.
  endpoint.answers.set('opaque-iss-own', answerJson({ active: true, iss: LEGACY, sub: 'alice', aud: AUD, exp: soon() }))
  expect((await call('opaque-iss-own')).status).toBe(200)
})

it('keeps a refusal, never a provider error: an error is asked again, and a token it then calls active passes', async () => {
  endpoint.answers.set('opaque-flaky', (res) => res.writeHead(500).end())
  expect((await call('opaque-flaky')).body.code).toBe('identity_provider_unavailable')
  endpoint.answers.set('opaque-flaky', answerJson({ active: true, sub: 'alice', aud: AUD, exp: soon() }))
  expect((await call('opaque-flaky')).status).toBe(200)
  expect(endpoint.asked.filter((token) => token === 'opaque-flaky')).toHaveLength(2)

  // An inactive answer, by contrast, is kept (negative_cache 60s): made active at the provider, still refused here.
  expect((await call('opaque-refused')).body.code).toBe('token_revoked')
  endpoint.answers.set('opaque-refused', answerJson({ active: true, sub: 'alice', aud: AUD, exp: soon() }))
  expect((await call('opaque-refused')).body.code).toBe('token_revoked')
  expect(endpoint.asked.filter((token) => token === 'opaque-refused')).toHaveLength(1)
})

it('keeps an active answer the issuer\'s rules refuse as long as an inactive one, with the same refusal; not a token valid later', async () => {
  const cases: Array<[string, Record<string, unknown>, string]> = [
    ['opaque-other-audience', { aud: 'api://someone-else' }, 'audience_mismatch'],
    ['opaque-refresh-token', { token_type: 'refresh_token' }, 'malformed_token'],
    ['opaque-expired', { exp: Math.floor(Date.now() / 1000) - 3600 }, 'token_expired'],
  ]
  for (const [token, claims, code] of cases) {
    endpoint.answers.set(token, answerJson({ active: true, sub: 'alice', aud: AUD, exp: soon(), ...claims }))
    const first = await call(token)
    expect({ token, status: first.status, code: first.body.code }).toEqual({ token, status: 401, code })
    // A retry loop (a dashboard's tiles) is answered from the kept refusal, the same words each time.
    const same = (res: Awaited<ReturnType<typeof call>>) => ({ status: res.status, code: res.body.code, detail: res.body.detail })
    for (let i = 0; i < 3; i++) expect(same(await call(token))).toEqual(same(first))
    expect(endpoint.asked.filter((asked) => asked === token), token).toHaveLength(1)
  }
  // Not valid before a time to come (the provider's clock ahead): asked again each time.
  endpoint.answers.set('opaque-not-yet', answerJson({ active: true, sub: 'alice', aud: AUD, exp: soon(), nbf: soon() - 60 }))
  for (let i = 0; i < 2; i++) expect((await call('opaque-not-yet')).body.code).toBe('token_not_yet_valid')
  expect(endpoint.asked.filter((asked) => asked === 'opaque-not-yet')).toHaveLength(2)
})
