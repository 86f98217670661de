// api_keys.header renamed by a reload (X-API-Key to X-Key): clients not yet changed still send their
// key under the old name, and from the reload on that was an ordinary header, passed to the
// upstream with the key in it (README: "The key never reaches an upstream"). The session cookie's
// names are withheld across such a rename (sign-in-probe-cookie-rename); the API key header's now
// are too: every name it has had in the running process.
import { join } from 'node:path'
import { request } from 'undici'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { startTestGateway, type TestGateway } from '../helpers/gateway.ts'
import { startUpstream, type Received, type TestUpstream } from '../helpers/upstream.ts'

const ADMIN_TOKEN = 'headers-probe-api-key-rename-admin-0123456789'
const KEY = `bk_0123456789abcdef_${'ab'.repeat(32)}`
let upstream: TestUpstream
let gateway: TestGateway

function config(header: string): Record<string, unknown> {
  return {
    admin: { token: ADMIN_TOKEN },
    api_keys: { store: { type: 'sqlite', path: join(gateway?.dir ?? '', 'keys.db') }, header },
    upstreams: [{ name: 'api', url: upstream.url }],
    routes: [{ id: 'open', path: '/open/*', upstream: 'api', public: true }],
  }
}

/** The headers the upstream received for a public route's request carrying `headers`. */
async function forwarded(headers: Record<string, string>): Promise<Received['headers']> {
  const res = await request(`${gateway.url}/open/page`, { headers })
  expect(res.statusCode).toBe(200)
  return ((await res.body.json()) as Received).headers
}

beforeAll(async () => {
  upstream = await startUpstream()
  gateway = await startTestGateway((dir) => ({ ...config('X-API-Key'), api_keys: { store: { type: 'sqlite', path: join(dir, 'keys.db') }, header: 'X-API-Key' } }))
})

afterAll(async () => {
  await gateway?.close()
  await upstream?.close()
})

describe('renaming api_keys.header by a reload', { timeout: 30_000 }, () => {
  it('control: the configured header never reaches the upstream', async () => {
    expect((await forwarded({ 'x-api-key': KEY }))['x-api-key']).toBeUndefined()
  })

  it('the old name is still withheld after the rename, and the new one too', async () => {
    await gateway.writeConfig(config('X-Key'))
    const res = await request(`${gateway.adminUrl}/api/reload`, { method: 'POST', headers: { authorization: `Bearer ${ADMIN_TOKEN}` } })
    expect(res.statusCode, await res.body.text()).toBe(200)
    const received = await forwarded({ 'x-api-key': KEY, 'x-key': KEY, 'x-other': 'passes' })
    expect(received['x-api-key']).toBeUndefined()
    expect(received['x-key']).toBeUndefined()
    expect(received['x-other']).toBe('passes')
  })
})
