// Proxy-Authentication-Info (RFC 7615 §4) is about the connection to a proxy, as Proxy-Authenticate
// is (RFC 9110 §11.7.1, §11.7.3): an upstream that is itself behind an authenticating proxy, or
// that answers as one, has it for its own hop. Relayed, the client read another hop's
// authentication parameters (its nextnonce) as if its own connection had authenticated.
import { request } from 'undici'
import { describe, expect, it } from 'vitest'
import { startTestGateway } from '../helpers/gateway.ts'
import { closeAfterEach } from '../helpers/lifecycle.ts'
import { startUpstream } from '../helpers/upstream.ts'

const closeLater = closeAfterEach()

describe("an upstream's Proxy-Authentication-Info", () => {
  it('is not relayed to the client, as Proxy-Authenticate is not', async () => {
    const upstream = await startUpstream((_req, res) => {
      res.writeHead(200, {
        'content-type': 'text/plain',
        'proxy-authentication-info': 'nextnonce="2a1f9c", qop=auth, rspauth="6629fae4"',
        'proxy-authenticate': 'Digest realm="inner"',
        'authentication-info': 'nextnonce="77aa01"',
      })
      res.end('ok')
    })
    closeLater(() => upstream.close())
    const gw = await startTestGateway({
      upstreams: [{ name: 'inner', url: upstream.url }],
      routes: [{ id: 'inner', path: '/*', upstream: 'inner', public: true }],
    })
    closeLater(() => gw.close())

    const res = await request(`${gw.url}/a`)
    expect(res.statusCode).toBe(200)
    expect(await res.body.text()).toBe('ok')
    expect(res.headers['proxy-authentication-info']).toBeUndefined()
    expect(res.headers['proxy-authenticate']).toBeUndefined()
    // The origin's own Authentication-Info is end to end (RFC 9110 §11.6.3): it passes.
    expect(res.headers['authentication-info']).toBe('nextnonce="77aa01"')
  })
})
