// Confirmed by a probe, fixed in docs/forward-auth.md: Caddy (and nginx) from the guide's snippets as written.
// The snippet removed the client's X-Api-Key before forward_auth, to keep a client's copy of the
// upstream's credential from reaching the API; but header names have no case, and Bouncer's own
// api_keys.header is X-API-Key by default: a client sending its key there behind the snippet never
// got it to the check (401). And Caddy 2.6 sends a header copied from an answer that lacks it as the
// text of its placeholder ({http.reverse_proxy.header.X-Api-Key}): an upstream without a
// credential got that text as one. The example's credential is now a header that cannot clash,
// every copied header's unset placeholder is dropped, and the client's key stops at the proxy.
import { join } from 'node:path'
import { request } from 'undici'
import { beforeAll, expect, it } from 'vitest'
import { behindEachProxy, forwardAuthSetup } from '../helpers/forward-auth-proxy.ts'
import { runCliInProcess } from '../helpers/cli-in-process.ts'

let key: string

const setup = forwardAuthSetup('fx1-caddy', (dir, api) => ({
  server: { trusted_proxies: ['127.0.0.1/32'], forward_auth_peers: ['127.0.0.1/32'] },
  api_keys: { store: { type: 'sqlite', path: join(dir, 'keys.db') }, cache: '0s' },
  roles: [{ name: 'reader', assumed_by: [{ issuer: 'api-keys', subject: 'key-reader' }], policies: ['read'] }],
  policies: [{ name: 'read', statements: [{ sid: 'Read', effect: 'allow', actions: ['GET'], routes: ['keyed'] }] }],
  upstreams: [
    { name: 'orders-api', url: api.url, headers: { 'X-Upstream-Key': 'orders-api-key-42' } },
    // The same API reached without a credential: Bouncer's 200 carries none to copy.
    { name: 'open-api', url: api.url },
  ],
  routes: [
    { id: 'keyed', methods: ['GET'], path: '/orders/*', upstream: 'orders-api', accept: ['api_key'] },
    { id: 'health', path: '/health', upstream: 'open-api', public: true },
  ],
}))

beforeAll(async () => {
  const created = await runCliInProcess(['keys', 'create', '--config', setup().gw.file, '--principal', 'key-reader'])
  expect(created.code, created.stderr).toBe(0)
  key = created.stdout.trim()
}, 30_000)

behindEachProxy(['caddy', 'nginx'], setup, (proxy, available) => {
  async function call(path: string, headers: Record<string, string>) {
    const { api } = setup()
    const before = api.received.length
    const res = await request(`${proxy().url}${path}`, { headers })
    await res.body.dump()
    return { status: res.statusCode, reached: api.received.slice(before) }
  }

  it.runIf(available)('a client\'s key in Bouncer\'s default X-API-Key reaches the check, and stops at the proxy', async () => {
    const { status, reached } = await call('/orders/1', { 'X-API-Key': key, 'X-Upstream-Key': 'the-clients-own' })
    expect(status).toBe(200)
    expect(reached).toHaveLength(1)
    expect(reached[0]!.headers['x-upstream-key']).toBe('orders-api-key-42')
    expect(reached[0]!.headers['x-api-key']).toBeUndefined()
  })

  it.runIf(available)('a header Bouncer\'s answer lacks reaches the API neither as Caddy\'s placeholder nor as the client\'s copy', async () => {
    const { status, reached } = await call('/health', { 'X-Upstream-Key': 'the-clients-own', 'X-Bouncer-Assertion': 'forged' })
    expect(status).toBe(200)
    expect(reached).toHaveLength(1)
    const headers = reached[0]!.headers
    expect(Object.entries(headers).filter(([, value]) => String(value).includes('{http.')), JSON.stringify(headers)).toEqual([])
    expect(headers['x-upstream-key']).toBeUndefined()
    expect(headers['x-bouncer-assertion']).toBeUndefined()
  })
})
