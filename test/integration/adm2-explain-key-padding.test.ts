// POST /api/explain checks an API key given as the token against the key store (whether its secret
// matches, and whose it is) for admin access only: to a read-only credential it is an unaudited
// oracle for a leaked key. The refusal tested for `bk_` after spaces and tabs, but explain trims
// every white space JavaScript knows: a key after a line break or a no-break space went past the
// refusal and was checked for the read-only token, valid or not told apart (found by the admin probe).
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { request } from 'undici'
import { afterAll, beforeAll, expect, it } from 'vitest'
import { runCliInProcess } from '../helpers/cli-in-process.ts'
import { startTestGateway, type TestGateway } from '../helpers/gateway.ts'

const ADMIN = 'adm2-explain-padding-admin-token-0123'
const READER = 'adm2-explain-padding-read-token-01234'
let dir: string
let gateway: TestGateway
let key: string

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'bouncer-adm2-explain-padding-'))
  gateway = await startTestGateway({
    admin: { token: ADMIN, read_token: READER },
    api_keys: { store: { type: 'sqlite', path: join(dir, 'keys.db') }, cache: '0s' },
    roles: [{ name: 'reader', assumed_by: [{ issuer: 'api-keys', subject: 'key-reader' }], policies: ['read'] }],
    policies: [{ name: 'read', statements: [{ sid: 'Read', effect: 'allow', actions: ['GET'], routes: ['keyed'] }] }],
    upstreams: [{ name: 'api', url: 'http://127.0.0.1:9' }],
    routes: [{ id: 'keyed', methods: ['GET'], path: '/keyed/*', upstream: 'api', accept: ['api_key'] }],
  })
  const created = await runCliInProcess(['keys', 'create', '--config', gateway.file, '--principal', 'key-reader'])
  expect(created.code, created.stderr).toBe(0)
  key = created.stdout.trim()
})

afterAll(async () => {
  await gateway?.close()
  if (dir) await rm(dir, { recursive: true, force: true })
})

it('refuses a read-only credential an API key after any white space explain would trim', async () => {
  for (const padding of ['\n', '\r\n', '\u00a0', '\ufeff', '\u2003']) {
    const res = await request(`${gateway.adminUrl}/api/explain`, {
      method: 'POST',
      headers: { authorization: `Bearer ${READER}`, 'content-type': 'application/json' },
      body: JSON.stringify({ method: 'GET', path: '/keyed/x', token: `${padding}${key}` }),
    })
    const answer = (await res.body.json()) as { code?: string; identity?: unknown }
    expect({ padding: JSON.stringify(padding), status: res.statusCode, code: answer.code }).toEqual({ padding: JSON.stringify(padding), status: 403, code: 'policy_denied' })
  }
})
