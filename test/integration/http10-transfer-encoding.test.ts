// Found by an adversarial probe (helper). RFC 9112 §6.1: "A server or client that receives an HTTP/1.0 message containing a
// Transfer-Encoding header field MUST treat the message as if the framing is faulty, even if a
// Content-Length is present, and close the connection after processing the message." HTTP/1.0
// intermediaries in front of the gateway do not know chunked: they frame such a message by
// Content-Length or by the connection's end, so the gateway reading chunked and keeping the
// connection alive is a desync between the two (request smuggling in front of the gateway).
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { startTestGateway, type TestGateway } from '../helpers/gateway.ts'
import { rawRequest } from '../helpers/raw.ts'
import { startUpstream, type TestUpstream } from '../helpers/upstream.ts'

let upstream: TestUpstream
let gateway: TestGateway
let port: number

beforeAll(async () => {
  upstream = await startUpstream()
  gateway = await startTestGateway({
    upstreams: [{ name: 'echo', url: upstream.url }],
    routes: [{ id: 'echo', path: '/*', upstream: 'echo', public: true }],
  })
  port = Number(new URL(gateway.url).port)
})
afterAll(async () => {
  await gateway.close()
  await upstream.close()
})

describe('HTTP/1.0 with Transfer-Encoding', () => {
  it('is refused with 400 and the connection closed: the next request on it is never read', async () => {
    upstream.received.length = 0
    const smuggled = 'GET /smuggled HTTP/1.1\r\nHost: gw\r\n\r\n'
    const res = await rawRequest(port, `POST /x HTTP/1.0\r\nHost: gw\r\nConnection: keep-alive\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n${smuggled}`, { timeout: 2_000 })
    expect(upstream.received.map((r) => r.url)).not.toContain('/smuggled')
    expect(res.status).toBe(400)
    expect(res.headers.connection).toBe('close')
  })
})
