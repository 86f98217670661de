// Found probing forward-auth (fixup1): where Bouncer forwards, it removes its sign-in session's
// cookies (bouncer_session, bouncer_session_state) from the Cookie header, since they are the
// gateway's credential, never the upstream's. Behind nginx or Caddy from docs/forward-auth.md's
// snippets, every request carried the person's session cookie on to the API: an application
// behind the proxy (or its request log) held a cookie it could replay at the gateway, as that person,
// on every other route. The snippets now remove them, the client's token's way.
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { request } from 'undici'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { proxyAvailable, startForwardAuthProxy, type ForwardAuthProxy } from '../helpers/forward-auth-proxy.ts'
import { startTestGateway, type TestGateway } from '../helpers/gateway.ts'
import { startUpstream, type TestUpstream } from '../helpers/upstream.ts'

let dir: string
let api: TestUpstream
let gw: TestGateway

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'bouncer-fx1-cookie-'))
  api = await startUpstream()
  gw = await startTestGateway({
    server: { trusted_proxies: ['127.0.0.1/32'], forward_auth_peers: ['127.0.0.1/32'] },
    upstreams: [{ name: 'api', url: api.url }],
    routes: [{ id: 'health', path: '/health', upstream: 'api', public: true }],
  })
}, 30_000)

afterAll(async () => {
  await gw?.close()
  await api?.close()
  await rm(dir, { recursive: true, force: true })
})

describe.each(['caddy', 'nginx'] as const)('behind %s', (kind) => {
  const available = proxyAvailable(kind)
  let proxy: ForwardAuthProxy | undefined
  beforeAll(async () => {
    if (available) proxy = await startForwardAuthProxy(kind, dir, gw.url, api.port, '/health')
  }, 30_000)
  afterAll(async () => {
    await proxy?.stop()
  })

  it.runIf(available)('the session\'s cookies stop at the proxy, the application\'s own pass', async () => {
    const cookies: Array<[string, string | undefined]> = [
      ['a=1; bouncer_session=stolen; b=2; bouncer_session_state=s', 'a=1; b=2'],
      ['bouncer_session=stolen; b=2', 'b=2'],
      // The gateway's cookie reader trims a name: this one is the session cookie too.
      ['a=1; bouncer_session =stolen', 'a=1'],
      ['my_bouncer_session=1; bouncer_sessions=2', 'my_bouncer_session=1; bouncer_sessions=2'],
      // Nothing left: no Cookie header at all, not an empty one.
      ['bouncer_session=stolen; bouncer_session_state=s', undefined],
    ]
    for (const [sent, expected] of cookies) {
      const before = api.received.length
      const res = await request(`${(proxy as ForwardAuthProxy).url}/health`, { headers: { cookie: sent } })
      await res.body.dump()
      expect(res.statusCode, sent).toBe(200)
      const reached = api.received.slice(before)
      expect(reached, sent).toHaveLength(1)
      // As the application reads them: a proxy may leave a separator behind.
      const pairs = (cookie: unknown) => String(cookie ?? '').split(';').map((pair) => pair.trim()).filter((pair) => pair !== '')
      if (expected === undefined) expect(reached[0]!.headers, sent).not.toHaveProperty('cookie')
      else expect(pairs(reached[0]!.headers.cookie), sent).toEqual(pairs(expected))
    }
  })
})
