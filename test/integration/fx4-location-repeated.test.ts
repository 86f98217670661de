// Found by a probe: an upstream redirect whose Location came as a repeated field (two Location
// lines: a framework that set it twice, a middleware adding its own) passed as it was, while one
// Location naming the upstream's own address is made a path on the gateway (ups2-location-rewrite):
// the client was sent to, and learnt, the internal address. RFC 9110 §10.2.2 allows one Location,
// but the gateway does not pick one for the client: each is rewritten as a single one would be.
import { describe, expect, it } from 'vitest'
import { startTestGateway } from '../helpers/gateway.ts'
import { closeAfterEach } from '../helpers/lifecycle.ts'
import { rawRequest } from '../helpers/raw.ts'
import { startUpstream } from '../helpers/upstream.ts'

const closeLater = closeAfterEach()

describe('an upstream redirect with a repeated Location', () => {
  it('has each Location that names the upstream made a path on the gateway', async () => {
    const upstream = await startUpstream((_req, res) => {
      res.setHeader('location', [`${upstream.url}/v1/login`, `${upstream.url}/v1/other?x=1`])
      res.writeHead(302)
      res.end()
    })
    closeLater(() => upstream.close())
    const gw = await startTestGateway({
      upstreams: [{ name: 'api', url: `${upstream.url}/v1` }],
      routes: [{ id: 'api', path: '/*', upstream: 'api', public: true }],
    })
    closeLater(() => gw.close())
    const res = await rawRequest(Number(new URL(gw.url).port), 'GET /a HTTP/1.1\r\nHost: gw.example\r\nConnection: close\r\n\r\n')
    expect(res.status).toBe(302)
    const locations = res.raw.split('\r\n\r\n')[0]!.split('\r\n').filter((line) => /^location:/i.test(line)).map((line) => line.slice(9).trim())
    expect(locations).toEqual(['/login', '/other?x=1'])
    expect(res.raw).not.toContain(new URL(upstream.url).host)
  })
})
