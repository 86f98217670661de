// Found by an adversarial probe (helper): an API key is the gateway's credential, "never the upstream's". A function behind a
// route is the upstream; its event (headers) must not carry the key, neither in api_keys.header
// nor as `Authorization: Bearer bk_…` on a forward_authorization route.
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { request } from 'undici'
import { stringify } from 'yaml'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { runCliInProcess } from '../helpers/cli-in-process.ts'
import { startTestGateway, type TestGateway } from '../helpers/gateway.ts'

let dir: string
let gw: TestGateway
let key: string

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'bouncer-functions-api-keys-'))
  await writeFile(join(dir, 'echo.mjs'), 'export async function handler(event) { return { headers: event.headers, cookies: event.cookies ?? [] } }\n')
  const config = {
    admin: { token: 'functions-api-keys-admin-0123456789' },
    api_keys: { store: { type: 'sqlite', path: join(dir, 'keys.db') } },
    roles: [{ name: 'bi', assumed_by: [{ issuer: 'api-keys', subject: 'looker-*' }], policies: ['all'] }],
    policies: [{ name: 'all', statements: [{ sid: 'All', effect: 'allow', actions: ['*'], routes: ['*'] }] }],
    functions: [{ name: 'echo', module: join(dir, 'echo.mjs') }],
    routes: [
      { id: 'fn.plain', path: '/fn/plain', function: 'echo', accept: ['api_key'] },
      { id: 'fn.fwd', path: '/fn/fwd', function: 'echo', accept: ['api_key'], forward_authorization: true },
    ],
  }
  const file = join(dir, 'bouncer.yaml')
  await writeFile(file, stringify({ ...config, audit: { sinks: [], spill_dir: join(dir, 'spill') } }))
  const created = await runCliInProcess(['keys', 'create', '--config', file, '--principal', 'looker-studio'])
  expect(created.code, created.stderr).toBe(0)
  key = created.stdout.trim()
  gw = await startTestGateway(config)
})

afterAll(async () => {
  await gw?.close()
  await rm(dir, { recursive: true, force: true })
})

describe('a function never sees the caller\'s API key', () => {
  it('X-API-Key is not in event.headers', async () => {
    const res = await request(`${gw.url}/fn/plain`, { headers: { 'x-api-key': key } })
    const text = await res.body.text()
    expect(res.statusCode).toBe(200)
    expect(text).not.toContain(key.slice(0, 40))
  })

  it('a look-alike X_Api_Key is not in event.headers either', async () => {
    const res = await request(`${gw.url}/fn/plain`, { headers: { 'x-api-key': key, 'x_api_key': 'bk_lookalike' } })
    const text = await res.body.text()
    expect(res.statusCode).toBe(200)
    expect(text).not.toContain('bk_lookalike')
  })

  it('Authorization: Bearer bk_… is not forwarded even with forward_authorization', async () => {
    const res = await request(`${gw.url}/fn/fwd`, { headers: { authorization: `Bearer ${key}` } })
    const text = await res.body.text()
    expect(res.statusCode).toBe(200)
    expect(text).not.toContain(key.slice(0, 40))
  })
})
