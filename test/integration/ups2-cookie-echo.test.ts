// An upstream that sets several cookies, one of which echoes the credential the gateway injected
// (a debug cookie, a "remember the token" cookie). The Set-Cookie field was withheld whole, so the
// client lost every cookie of the answer, its session's too, and could not sign in to the app
// behind (a probe). Only the field lines that hold the credential are withheld.
import { request } from 'undici'
import { describe, expect, it } from 'vitest'
import { startTestGateway } from '../helpers/gateway.ts'
import { closeAfterEach } from '../helpers/lifecycle.ts'
import { startUpstream } from '../helpers/upstream.ts'

const closeLater = closeAfterEach()
const TOKEN = 'upstream-token-c00c1e5678'

describe('an upstream answer with several Set-Cookie lines, one echoing the injected credential', () => {
  it('keeps the others', async () => {
    const upstream = await startUpstream((req, res) => {
      const sent = String(req.headers['x-api-key'])
      res.setHeader('set-cookie', ['session=s3ss10n; Path=/; HttpOnly', `debug_key=${sent}; Path=/`, 'theme=dark; Path=/'])
      res.setHeader('x-echo', [`key ${sent}`, `again ${sent}`])
      res.end('ok')
    })
    closeLater(() => upstream.close())
    const gw = await startTestGateway({
      upstreams: [{ name: 'api', url: upstream.url, headers: { 'X-Api-Key': '${env:UPS2_KEY}' } }],
      routes: [{ id: 'api', path: '/*', upstream: 'api', public: true }],
    }, { env: { UPS2_KEY: TOKEN } })
    closeLater(() => gw.close())
    const res = await request(`${gw.url}/x`)
    expect(await res.body.text()).toBe('ok')
    expect(res.headers['set-cookie']).toEqual(['session=s3ss10n; Path=/; HttpOnly', 'theme=dark; Path=/'])
    expect(res.headers['x-echo']).toBeUndefined()
    expect(JSON.stringify(res.headers)).not.toContain(TOKEN)
  })
})
