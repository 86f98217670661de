// An upstream's 401 and its WWW-Authenticate. The gateway passes the upstream's answer on (its
// status, body and challenge: the client learns the scheme the upstream asks for). But a challenge
// that quoted the credential the gateway injected was withheld whole, and the client got a 401
// with no WWW-Authenticate at all, which RFC 9110 §11.6.1 and §15.5.2 say it MUST carry: a client
// library could not tell what the upstream wanted. The challenge keeps its scheme, its parameters
// (where the credential was) left out; one that holds no credential passes as it is.
import { request } from 'undici'
import { describe, expect, it } from 'vitest'
import { startTestGateway } from '../helpers/gateway.ts'
import { closeAfterEach } from '../helpers/lifecycle.ts'
import { startUpstream } from '../helpers/upstream.ts'

const closeLater = closeAfterEach()
const TOKEN = 'upstream-token-c0ffee1234'

describe('an upstream 401 with WWW-Authenticate', () => {
  it('passes on; one that quotes the injected credential keeps its scheme alone', async () => {
    const upstream = await startUpstream((req, res) => {
      const sent = String(req.headers.authorization).slice('Bearer '.length)
      const challenges: Record<string, string[]> = {
        '/plain': ['Bearer realm="api", error="invalid_token"'],
        '/echo': [`Bearer realm="api", error="invalid_token", error_description="token ${sent} expired"`],
        '/two': ['Basic realm="svc"', `Bearer error_description="token ${sent} expired"`],
        '/token68': [`Negotiate ${sent}`],
      }
      res.setHeader('www-authenticate', challenges[req.url as string] as string[])
      res.writeHead(401, { 'content-type': 'text/plain' })
      res.end('refused')
    })
    closeLater(() => upstream.close())
    const gw = await startTestGateway({
      upstreams: [{ name: 'api', url: upstream.url, headers: { Authorization: 'Bearer ${env:UPS2_TOKEN}' } }],
      routes: [{ id: 'api', path: '/*', upstream: 'api', public: true }],
    }, { env: { UPS2_TOKEN: TOKEN } })
    closeLater(() => gw.close())
    const challenge = async (path: string) => {
      const res = await request(`${gw.url}${path}`)
      expect(res.statusCode, path).toBe(401)
      expect(await res.body.text(), path).toBe('refused')
      expect(JSON.stringify(res.headers), path).not.toContain(TOKEN)
      return res.headers['www-authenticate']
    }
    expect(await challenge('/plain')).toBe('Bearer realm="api", error="invalid_token"')
    expect(await challenge('/echo')).toBe('Bearer')
    expect(await challenge('/two')).toEqual(['Basic realm="svc"', 'Bearer'])
    expect(await challenge('/token68')).toBe('Negotiate')
  })
})
