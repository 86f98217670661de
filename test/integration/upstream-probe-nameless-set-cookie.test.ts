// Found by an adversarial probe of the upstream side: the gateway drops an upstream's Set-Cookie
// for its own session cookie by the name before the first `=`, but a nameless cookie slipped past:
// `Set-Cookie: =bouncer_session=ATTACKER; Path=/app` has an empty name, and a browser stores it and
// sends its value alone (RFC 6265bis §5.6: only `__Host-` and `__Secure-` values are refused), as
// `Cookie: bouncer_session=ATTACKER; bouncer_session=<the person's>`, the longer path first. The
// gateway reads the first: any target could put a person under a session of its choosing on a
// path (fixation) or end theirs there. Now a nameless cookie whose value names one of the
// gateway's cookies is dropped as that cookie is; other nameless cookies pass as sent.
import { request } from 'undici'
import { describe, expect, it } from 'vitest'
import { startTestGateway } from '../helpers/gateway.ts'
import { closeAfterEach } from '../helpers/lifecycle.ts'
import { startUpstream } from '../helpers/upstream.ts'

const closeLater = closeAfterEach()

describe('a nameless Set-Cookie whose value names the gateway\'s session cookie', () => {
  it('is dropped, with its look-alikes; the upstream\'s other cookies, nameless ones too, pass', async () => {
    const up = await startUpstream((_req, res) => {
      res.writeHead(200, {
        'set-cookie': [
          '=bouncer_session=attacker-chosen; Path=/app/admin; HttpOnly',
          '= bouncer_session=spaced; Path=/app',
          '=bouncer_session_state=x',
          '  =  bouncer_session =padded',
          'app=1; Path=/',
          '=plain-nameless',
          '=other=value',
        ],
        'content-type': 'text/plain',
      })
      res.end('ok')
    })
    closeLater(() => up.close())
    const gw = await startTestGateway({
      // Browser sign-in configured: bouncer_session is the gateway's own credential cookie.
      issuers: [{ name: 'sso', issuer: 'http://127.0.0.1:9/', audiences: ['x'] }],
      sign_in: { issuer: 'sso', client_id: 'bouncer', client_secret: 'not-used-here' },
      upstreams: [{ name: 'api', url: up.url }],
      routes: [{ id: 'api', path: '/*', upstream: 'api', public: true }],
    })
    closeLater(() => gw.close())
    const res = await request(`${gw.url}/app/admin/x`)
    await res.body.dump()
    const cookies = [res.headers['set-cookie'] ?? []].flat()
    expect(cookies.filter((c) => /bouncer_session/.test(c))).toEqual([])
    expect(cookies).toEqual(['app=1; Path=/', '=plain-nameless', '=other=value'])
  })
})
