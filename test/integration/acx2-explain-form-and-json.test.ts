// Found by the access probe (helper): `bouncer explain --form … --json-body …` (and POST /api/explain
// with both "form" and "json") explained a request no client can send — one body of two types —
// deciding both bodies' `_method`s, so a config's own deny on one answered for the other; the
// command exited 1 "denied" where it should have said the request is impossible (exit 2).
import { request } from 'undici'
import { afterAll, beforeAll, expect, it } from 'vitest'
import { runCliInProcess } from '../helpers/cli-in-process.ts'
import { startTestGateway, type TestGateway } from '../helpers/gateway.ts'

const ADMIN = 'acx2-explain-form-and-json-admin-0123456789'
let gw: TestGateway

beforeAll(async () => {
  gw = await startTestGateway({
    admin: { token: ADMIN },
    issuers: [{ name: 'corp', issuer: 'https://corp.example', jwks_uri: 'http://127.0.0.1:9/jwks', audiences: ['api'] }],
    roles: [{ name: 'writer', assumed_by: [{ issuer: 'corp' }], policies: ['write'] }],
    policies: [{ name: 'write', statements: [{ sid: 'Write', effect: 'allow', actions: ['POST', 'PATCH'], routes: ['records'] }] }],
    upstreams: [{ name: 'api', url: 'http://127.0.0.1:9' }],
    routes: [{ id: 'records', methods: ['POST', 'PATCH', 'DELETE'], path: '/records/:id', upstream: 'api' }],
  })
})

afterAll(async () => {
  await gw?.close()
})

const claims = JSON.stringify({ iss: 'https://corp.example', aud: 'api', sub: 'svc-1' })

it('bouncer explain refuses --form with --json-body: a usage error (exit 2)', async () => {
  const both = await runCliInProcess(['explain', '--config', gw.file, '--method', 'POST', '--path', '/records/1', '--claims', claims, '--form', '_method=PATCH', '--json-body', '{"_method":"DELETE"}'])
  expect(both.stdout).toBe('')
  expect(both.stderr.trim()).toBe('bouncer: give --form or --json-body, not both: a request has one body, of one Content-Type')
  expect(both.code).toBe(2)
  // Each alone is explained as before (authz-form-method-override, authz-json-method-override).
})

it('POST /api/explain refuses "form" with "json" (400 bad_request)', async () => {
  const explain = async (body: Record<string, unknown>) => {
    const res = await request(`${gw.adminUrl}/api/explain`, { method: 'POST', headers: { authorization: `Bearer ${ADMIN}`, 'content-type': 'application/json' }, body: JSON.stringify({ method: 'POST', path: '/records/1', claims: JSON.parse(claims), ...body }) })
    return { status: res.statusCode, body: (await res.body.json()) as Record<string, unknown> }
  }
  const both = await explain({ form: '_method=PATCH', json: '{"_method":"DELETE"}' })
  expect(both).toMatchObject({ status: 400, body: { code: 'bad_request', detail: 'give "form" or "json", not both: a request has one body, of one Content-Type.' } })
  expect((await explain({ form: '_method=PATCH' })).status).toBe(200)
})
