// A reload refused after its config was compiled (here: its admin tokens, read from the secrets
// store, are one value) named api_keys.header X-Refused. The compile had added that name to the
// process's withheld names: from the next reload on, until a restart, an upstream's own X-Refused
// header never reached it, though no config that served ever named it. A config's credential names join the process's only
// once it serves.
import { join } from 'node:path'
import { request } from 'undici'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { startTestGateway, type TestGateway } from '../helpers/gateway.ts'
import { startUpstream, type Received, type TestUpstream } from '../helpers/upstream.ts'

const ADMIN_TOKEN = 'refused-reload-names-admin-0123456789'
const env = { REFUSED_NAMES_SECRET_ADMIN_TOKEN: 'same-value-0123456789', REFUSED_NAMES_SECRET_READ_TOKEN: 'same-value-0123456789' }
let upstream: TestUpstream
let gateway: TestGateway

function config(dir: string, header: string): Record<string, unknown> {
  return {
    admin: { token: ADMIN_TOKEN },
    api_keys: { store: { type: 'sqlite', path: join(dir, 'keys.db') }, header },
    upstreams: [{ name: 'api', url: upstream.url }],
    routes: [{ id: 'open', path: '/open/*', upstream: 'api', public: true }],
  }
}

async function forwarded(headers: Record<string, string>): Promise<Received['headers']> {
  const res = await request(`${gateway.url}/open/page`, { headers })
  expect(res.statusCode).toBe(200)
  return ((await res.body.json()) as Received).headers
}

beforeAll(async () => {
  upstream = await startUpstream()
  gateway = await startTestGateway((dir) => config(dir, 'X-API-Key'), { env })
})

afterAll(async () => {
  await gateway?.close()
  await upstream?.close()
})

describe('a reload refused after its compile', { timeout: 30_000 }, () => {
  it('leaves the header names withheld as they were: its own api_keys.header reaches the upstream', async () => {
    await gateway.writeConfig({
      ...config(gateway.dir, 'X-Refused'),
      admin: { token: '${secret:admin-token}', read_token: '${secret:read-token}' },
      secrets: { store: { type: 'env', prefix: 'REFUSED_NAMES_SECRET_' } },
    })
    const res = await request(`${gateway.adminUrl}/api/reload`, { method: 'POST', headers: { authorization: `Bearer ${ADMIN_TOKEN}` } })
    const body = await res.body.text()
    expect(res.statusCode, body).toBe(422)
    expect(body).toContain('admin.read_token has the same value as admin.token')

    // Then a reload that serves (the config as it was): the names it withholds are the process's
    // of the configs that served, not the refused one's.
    await gateway.writeConfig(config(gateway.dir, 'X-API-Key'))
    const ok = await request(`${gateway.adminUrl}/api/reload`, { method: 'POST', headers: { authorization: `Bearer ${ADMIN_TOKEN}` } })
    expect(ok.statusCode, await ok.body.text()).toBe(200)
    const received = await forwarded({ 'x-api-key': 'bk_kept_withheld', 'x-refused': 'an upstream header' })
    expect(received['x-api-key']).toBeUndefined() // the running config's key header
    expect(received['x-refused']).toBe('an upstream header')
  })
})
