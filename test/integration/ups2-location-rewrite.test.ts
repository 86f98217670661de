// An upstream that redirects to its own absolute URL: it builds the Location from the Host it was
// sent, which is its target's (http://10.0.0.5:9500/v1/login), as Django's build_absolute_uri and
// Spring's redirect: do without a forwarded-headers setting. The client was sent to an internal
// address it cannot reach, and learnt it. As nginx's proxy_redirect default does, a Location under
// one of the upstream's targets and its base path is made the gateway's: a path on the host the
// client asked (a relative reference, RFC 9110 §10.2.2, so the client's own Host is not trusted to
// name it). Anything else passes as it is, and nothing becomes a reference to another host (`//`).
import { request } from 'undici'
import { describe, expect, it } from 'vitest'
import { startTestGateway } from '../helpers/gateway.ts'
import { closeAfterEach } from '../helpers/lifecycle.ts'
import { startUpstream } from '../helpers/upstream.ts'

const closeLater = closeAfterEach()

describe('an upstream redirect to its own address', () => {
  it('becomes a path on the gateway; other locations pass as they are', async () => {
    let location = ''
    const upstream = await startUpstream((_req, res) => {
      res.writeHead(302, { location })
      res.end()
    })
    closeLater(() => upstream.close())
    const other = await startUpstream()
    closeLater(() => other.close())
    const gw = await startTestGateway({
      upstreams: [{ name: 'api', targets: [`${upstream.url}/v1`, `${other.url}/v1`], balance: 'round_robin' }],
      routes: [
        { id: 'moved', path: '/moved/*', upstream: 'api', upstream_path: '/elsewhere/*', public: true },
        { id: 'api', path: '/*', upstream: 'api', public: true },
      ],
    })
    closeLater(() => gw.close())
    const redirected = async (to: string, path = '/a') => {
      location = to
      // Round robin: until the redirecting target answers.
      for (let i = 0; i < 4; i++) {
        const res = await request(`${gw.url}${path}`)
        await res.body.dump()
        if (res.statusCode === 302) return res.headers.location
      }
      throw new Error('no redirect')
    }
    const host = new URL(upstream.url).host
    const otherHost = new URL(other.url).host
    expect(await redirected(`${upstream.url}/v1/login?next=%2Fa#top`)).toBe('/login?next=%2Fa#top')
    expect(await redirected(`${upstream.url}/v1`)).toBe('/')
    expect(await redirected(`${upstream.url}/v1?x=1`)).toBe('/?x=1')
    expect(await redirected(`HTTP://${host.toUpperCase()}/v1/b`)).toBe('/b')
    // Another target of the same upstream names the gateway too.
    expect(await redirected(`http://${otherHost}/v1/c`)).toBe('/c')
    // Not under the base path, another host, relative already, or a path that would name another host: as they are.
    for (const to of [`${upstream.url}/v10/x`, `${upstream.url}/elsewhere`, 'https://example.com/v1/x', '/v1/relative', `${upstream.url}/v1//evil.example/x`, `${upstream.url}/v1/\\evil.example`]) {
      expect(await redirected(to), to).toBe(to)
    }
    // A route whose upstream_path rewrites its path: no way back to the client's path, as it is.
    expect(await redirected(`${upstream.url}/v1/elsewhere/b`, '/moved/b')).toBe(`${upstream.url}/v1/elsewhere/b`)
  })
})
