// Found by the access probe (helper): `bouncer explain --path sales/customers` (the leading slash
// forgotten) or `--path ""` (an unset shell variable) was explained as a request the gateway refuses
// — 400 bad_path, exit 1 "denied" — so a CI check that a route is denied passed on a typo, as a
// mistyped --ip once did. No client sends such a target: a usage error (exit 2), and 400 at
// POST /api/explain. A whole URL (absolute form) is still explained.
import { request } from 'undici'
import { afterAll, beforeAll, expect, it } from 'vitest'
import { runCliInProcess } from '../helpers/cli-in-process.ts'
import { startTestGateway, type TestGateway } from '../helpers/gateway.ts'

const ADMIN = 'acx2-explain-path-typo-admin-0123456789'
let gw: TestGateway

beforeAll(async () => {
  gw = await startTestGateway({
    admin: { token: ADMIN },
    issuers: [{ name: 'corp', issuer: 'https://corp.example', jwks_uri: 'http://127.0.0.1:9/jwks', audiences: ['api'] }],
    roles: [{ name: 'reader', assumed_by: [{ issuer: 'corp' }], policies: ['read'] }],
    policies: [{ name: 'read', statements: [{ sid: 'Read', effect: 'allow', actions: ['GET'], routes: ['records'] }] }],
    upstreams: [{ name: 'api', url: 'http://127.0.0.1:9' }],
    routes: [{ id: 'records', methods: ['GET'], path: '/records/:id', upstream: 'api' }],
  })
})

afterAll(async () => {
  await gw?.close()
})

const claims = { iss: 'https://corp.example', aud: 'api', sub: 'svc-1' }

it('bouncer explain refuses a --path that is no request target: a usage error (exit 2)', async () => {
  for (const path of ['records/1', '']) {
    const result = await runCliInProcess(['explain', '--config', gw.file, '--method', 'GET', '--path', path, '--claims', JSON.stringify(claims)])
    expect(result, JSON.stringify(path)).toMatchObject({ code: 2, stdout: '', stderr: `bouncer: --path must start with "/" (e.g. /sales/daily/eu), or be a whole URL (not ${JSON.stringify(path)})\n` })
  }
})

it('POST /api/explain refuses such a "path" (400), and explains a path and a whole URL', async () => {
  const explain = async (path: string) => {
    const res = await request(`${gw.adminUrl}/api/explain`, { method: 'POST', headers: { authorization: `Bearer ${ADMIN}`, 'content-type': 'application/json' }, body: JSON.stringify({ method: 'GET', path, claims }) })
    return { status: res.statusCode, body: (await res.body.json()) as { code?: string; detail?: string; decision?: { effect: string } } }
  }
  expect(await explain('records/1')).toMatchObject({ status: 400, body: { code: 'bad_request', detail: '"path" must start with "/" (e.g. "/sales/daily/eu"), or be a whole URL.' } })
  expect(await explain('/records/1')).toMatchObject({ status: 200, body: { decision: { effect: 'allow' } } })
  expect(await explain('https://gateway.example/records/1')).toMatchObject({ status: 200, body: { decision: { effect: 'allow' } } })
})
