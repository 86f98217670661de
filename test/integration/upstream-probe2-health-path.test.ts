// A health check's `path` goes on the wire as it is written: undici sends its characters as Latin-1
// bytes, and refuses one above U+00FF ("invalid request path"). A probe: `path: /santé` passed
// bouncer check, every check was then a 400 from the target (a byte 0xE9 is no URL), the target was
// taken out, and every request got 503 upstream_unavailable from a gateway whose config said ok;
// `/健康` failed each check before it was sent. bouncer check now refuses what is not ASCII, and
// says to percent-encode it, as the target expects it.
import { request } from 'undici'
import { describe, expect, it } from 'vitest'
import { formatDiagnostic, loadConfigText } from '../../src/config/index.ts'
import { startTestGateway } from '../helpers/gateway.ts'
import { closeAfterEach } from '../helpers/lifecycle.ts'
import { startUpstream } from '../helpers/upstream.ts'
import { waitFor } from '../helpers/wait.ts'

const closeLater = closeAfterEach()

function check(path: string): string[] {
  const yaml = `upstreams:\n  - name: api\n    url: http://127.0.0.1:1\n    health_check: { path: "${path}" }\nroutes: []\n`
  return loadConfigText(yaml, 'bouncer.yaml', {}).diagnostics.map((d) => formatDiagnostic('bouncer.yaml', d))
}

describe('a health check path that is not ASCII', () => {
  it('is refused by bouncer check, at its line, saying to percent-encode it', () => {
    for (const path of ['/santé', '/健康', '/a\u007f']) {
      expect(check(path), path).toEqual([expect.stringMatching(/^bouncer\.yaml:4:\d+: upstreams\[0\]\.health_check\.path: .*percent-encode/)])
    }
  })

  it('percent-encoded, it passes check, reaches the target as written, and the target stays in rotation', async () => {
    expect(check('/sant%C3%A9?full=1')).toEqual([])
    const up = await startUpstream()
    closeLater(() => up.close())
    const gw = await startTestGateway({
      upstreams: [{ name: 'api', url: up.url, health_check: { path: '/sant%C3%A9', interval: '100ms', timeout: '500ms', unhealthy_after: 1 } }],
      routes: [{ id: 'api', path: '/*', upstream: 'api', public: true }],
    })
    closeLater(() => gw.close())
    await waitFor(() => up.received.filter((r) => r.url === '/sant%C3%A9').length >= 2, 'two health checks at the target')
    const res = await request(`${gw.url}/work`)
    await res.body.dump()
    expect(res.statusCode).toBe(200)
  })
})
