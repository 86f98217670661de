// A Host written as a fully qualified name, with its trailing dot (`api.example.com.`: RFC 1034
// §3.1, the absolute form; browsers keep the dot in Host and treat it as an origin of its own): it
// names the same host as `api.example.com`, but server.hosts did not know it, so the upstream got no
// X-Forwarded-Host and built its redirects and links on its own internal address. The dot is
// ignored in matching; the host goes on as the client wrote it. The Host sent upstream stays the
// target's, whatever the client's.
import { request } from 'undici'
import { describe, expect, it } from 'vitest'
import { startTestGateway } from '../helpers/gateway.ts'
import { closeAfterEach } from '../helpers/lifecycle.ts'
import { startUpstream, type Received } from '../helpers/upstream.ts'

const closeLater = closeAfterEach()

describe('a Host with a trailing dot, under server.hosts', () => {
  it('is vouched for as the name it is; the upstream is sent its own Host', async () => {
    const upstream = await startUpstream()
    closeLater(() => upstream.close())
    const gw = await startTestGateway({
      server: { hosts: ['api.example.com', '*.apps.example.com:8443'] },
      upstreams: [{ name: 'api', url: upstream.url }],
      routes: [{ id: 'api', path: '/*', upstream: 'api', public: true }],
    })
    closeLater(() => gw.close())
    const sent = async (host: string) => {
      const res = await request(`${gw.url}/x`, { headers: { host } })
      expect(res.statusCode, host).toBe(200)
      return ((await res.body.json()) as Received).headers
    }
    const target = new URL(upstream.url).host
    for (const host of ['api.example.com', 'api.example.com.', 'API.Example.COM.', 'a.apps.example.com.:8443']) {
      const headers = await sent(host)
      expect(headers['x-forwarded-host'], host).toBe(host)
      expect(headers.host, host).toBe(target)
    }
    // Still not another name, nor an empty label.
    for (const host of ['api.example.com..', 'api.example.comx.', '.', 'apps.example.com.:8443']) {
      expect((await sent(host))['x-forwarded-host'], host).toBeUndefined()
    }
  })
})
