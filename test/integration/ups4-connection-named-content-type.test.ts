// An upstream's answer whose Connection named Content-Type (or Content-Length) had that field
// removed as for one hop only: a `text/plain` body reached the client with no type at all, which a
// browser sniffs, and `<script>` in it ran as HTML. RFC 9110 §7.6.1: a connection option never names
// a field meant for every recipient; a request that does is refused (400, headers-probe-connection-
// content-type), and an answer's keeps both fields, its other named fields going as before.
import { request } from 'undici'
import { describe, expect, it } from 'vitest'
import { startTestGateway } from '../helpers/gateway.ts'
import { closeAfterEach } from '../helpers/lifecycle.ts'
import { startRawUpstream } from '../helpers/raw-upstream.ts'

const closeLater = closeAfterEach()

describe('an upstream answer whose Connection names Content-Type', () => {
  it('reaches the client with its Content-Type and Content-Length; the other named fields go', async () => {
    const body = '<script>alert(1)</script>'
    const raw = await startRawUpstream((_head, socket) => {
      socket.write(`HTTP/1.1 200 OK\r\nConnection: Content-Type, content-length, X-Hop\r\nX-Hop: 1\r\nContent-Type: text/plain\r\nContent-Length: ${body.length}\r\n\r\n${body}`)
    })
    closeLater(() => raw.close())
    const gw = await startTestGateway({
      upstreams: [{ name: 'app', url: raw.url }],
      routes: [{ id: 'app', path: '/*', upstream: 'app', public: true }],
    })
    closeLater(() => gw.close())

    const res = await request(`${gw.url}/a`)
    expect(res.statusCode).toBe(200)
    expect(res.headers['content-type']).toBe('text/plain')
    expect(res.headers['content-length']).toBe(String(body.length))
    expect(res.headers['x-hop']).toBeUndefined()
    expect(await res.body.text()).toBe(body)
  })
})
