// An upstream under a base path (url http://10.0.0.5:9500/v1) that scopes its cookies to where it
// is mounted (Set-Cookie: sid=…; Path=/v1, as Tomcat does with its context path): the client sees
// the upstream's paths without the base path (/app for /v1/app), so the browser never sent the
// cookie back, and a sign-in into the app behind went round in a loop. As nginx's proxy_cookie_path
// does when asked, a cookie's Path under the base path is made the gateway's path, on a route that
// forwards its own path; any other Path passes as it is.
import { request } from 'undici'
import { describe, expect, it } from 'vitest'
import { startTestGateway } from '../helpers/gateway.ts'
import { closeAfterEach } from '../helpers/lifecycle.ts'
import { startUpstream } from '../helpers/upstream.ts'

const closeLater = closeAfterEach()

describe('an upstream under a base path that scopes its cookies to it', () => {
  it('sets them on the gateway\'s paths', async () => {
    const upstream = await startUpstream((_req, res) => {
      res.setHeader('set-cookie', ['sid=1; Path=/v1; HttpOnly', 'pref=2; path=/v1/app/settings', 'other=3; Path=/v10', 'site=4; Path=/', 'plain=5', 'moved=6; Max-Age=60; PATH = /v1/x ; Secure'])
      res.end('ok')
    })
    closeLater(() => upstream.close())
    const gw = await startTestGateway({
      upstreams: [{ name: 'api', url: `${upstream.url}/v1` }],
      routes: [
        { id: 'moved', path: '/moved/*', upstream: 'api', upstream_path: '/elsewhere/*', public: true },
        { id: 'api', path: '/*', upstream: 'api', public: true },
      ],
    })
    closeLater(() => gw.close())
    const res = await request(`${gw.url}/app`)
    await res.body.dump()
    expect(res.headers['set-cookie']).toEqual(['sid=1; Path=/; HttpOnly', 'pref=2; path=/app/settings', 'other=3; Path=/v10', 'site=4; Path=/', 'plain=5', 'moved=6; Max-Age=60; PATH = /x ; Secure'])
    // A rewritten route has no way back: as they came.
    const moved = await request(`${gw.url}/moved/a`)
    await moved.body.dump()
    expect(moved.headers['set-cookie']).toEqual(['sid=1; Path=/v1; HttpOnly', 'pref=2; path=/v1/app/settings', 'other=3; Path=/v10', 'site=4; Path=/', 'plain=5', 'moved=6; Max-Age=60; PATH = /v1/x ; Secure'])
  })
})
