// An upstream that echoes the credential the gateway injects is withheld from the client (the
// header line that holds it), but only as the bytes were sent: the same value percent-encoded, as
// an upstream puts it in a URL (a Location's query, a Link), passed to the client, which had only
// to decode it. Lines holding the credential percent-encoded (either hex case, only in part, twice
// over) are withheld too. The body is not searched (README: it streams, maybe compressed).
import { request } from 'undici'
import { describe, expect, it } from 'vitest'
import { startTestGateway } from '../helpers/gateway.ts'
import { closeAfterEach } from '../helpers/lifecycle.ts'
import { startUpstream } from '../helpers/upstream.ts'

const closeLater = closeAfterEach()
// Base64's `+`, `/` and `=` are what a URL encodes.
const KEY = 'k3y+Zm9v/YmFy+cXV4=='

describe('an upstream that echoes the injected credential percent-encoded', () => {
  it('the lines holding it are withheld, the others pass', async () => {
    const encoded = encodeURIComponent(KEY)
    const lower = encoded.replace(/%[0-9A-F]{2}/g, (hex) => hex.toLowerCase())
    const upstream = await startUpstream((req, res) => {
      expect(req.headers['x-api-key']).toBe(KEY)
      res.writeHead(302, [
        'location', `/login?next=%2Fhome&key=${encoded}`,
        'link', `</next?k=${lower}>; rel="next"`,
        'x-partly', `k=${KEY.replace('/', '%2F')}`,
        'x-twice', `k=${encodeURIComponent(encoded)}`,
        'x-debug', 'ordinary %41 value',
        'set-cookie', 'sid=abc; Path=/',
        'set-cookie', `leak=${encoded}; Path=/`,
      ])
      res.end()
    })
    closeLater(() => upstream.close())
    const gw = await startTestGateway({
      upstreams: [{ name: 'api', url: upstream.url, headers: { 'X-Api-Key': KEY } }],
      routes: [{ id: 'api', path: '/*', upstream: 'api', public: true }],
    })
    closeLater(() => gw.close())

    const res = await request(`${gw.url}/x`)
    await res.body.dump()
    expect(res.statusCode).toBe(302)
    const all = JSON.stringify(res.headers)
    expect(all).not.toContain(encoded)
    expect(all.toLowerCase()).not.toContain(lower.toLowerCase())
    expect(res.headers.location).toBeUndefined()
    expect(res.headers.link).toBeUndefined()
    expect(res.headers['x-partly']).toBeUndefined()
    expect(res.headers['x-twice']).toBeUndefined()
    expect(res.headers['x-debug']).toBe('ordinary %41 value')
    expect(res.headers['set-cookie']).toBe('sid=abc; Path=/')
  })
})
