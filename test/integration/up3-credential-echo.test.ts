// An upstream that echoes the credential the gateway injects (upstreams[].headers) back in its
// answer's headers: a debug header, a WWW-Authenticate that quotes the token it refused. The client
// never holds that credential (SPEC: the client cannot set or override those headers), but it got
// it in the answer, as an MCP server's echo no longer reaches an agent. Such a header is withheld.
import { request } from 'undici'
import { describe, expect, it } from 'vitest'
import { startTestGateway } from '../helpers/gateway.ts'
import { closeAfterEach } from '../helpers/lifecycle.ts'
import { startUpstream } from '../helpers/upstream.ts'

const closeLater = closeAfterEach()
const TOKEN = 'upstream-token-5f1c9a7e'
const KEY = 'partner-key-0b3d8e21'
const PASSWORD = 'basic-password-77a1'

describe('an upstream that echoes the injected credential in its answer headers', () => {
  it('the headers holding it are withheld from the client; the others pass', async () => {
    const upstream = await startUpstream((req, res) => {
      const basic = Buffer.from(String(req.headers['x-basic-auth']).slice('Basic '.length), 'base64').toString('utf8')
      res.writeHead(401, {
        'www-authenticate': `Bearer realm="api", error="invalid_token", error_description="token ${String(req.headers.authorization).slice('Bearer '.length)} expired"`,
        'x-debug-authorization': String(req.headers.authorization),
        'x-seen-key': `key=${String(req.headers['x-api-key'])}`,
        'x-seen-user': basic,
        'x-ok': 'fine',
        'content-type': 'text/plain',
      })
      res.end('refused')
    })
    closeLater(() => upstream.close())
    const gw = await startTestGateway({
      upstreams: [{
        name: 'api',
        url: upstream.url,
        headers: { Authorization: 'Bearer ${env:UP3_TOKEN}', 'X-Api-Key': '${env:UP3_KEY}', 'X-Basic-Auth': 'Basic ${env:UP3_BASIC}' },
      }],
      routes: [{ id: 'api', path: '/*', upstream: 'api', public: true }],
    }, { env: { UP3_TOKEN: TOKEN, UP3_KEY: KEY, UP3_BASIC: Buffer.from(`svc:${PASSWORD}`).toString('base64') } })
    closeLater(() => gw.close())

    const res = await request(`${gw.url}/x`)
    expect(res.statusCode).toBe(401)
    expect(await res.body.text()).toBe('refused')
    expect(res.headers['x-ok']).toBe('fine')
    for (const name of ['x-debug-authorization', 'x-seen-key', 'x-seen-user']) expect(res.headers[name], name).toBeUndefined()
    // A 401 keeps its challenge's scheme (ups2-www-authenticate).
    expect(res.headers['www-authenticate']).toBe('Bearer')
    const all = JSON.stringify(res.headers)
    for (const secret of [TOKEN, KEY, PASSWORD]) expect(all).not.toContain(secret)
  })
})
