// Found by the front-door probe: an HTTP/1.0 request with `Expect: 100-continue` was sent
// `HTTP/1.1 100 Continue` before its answer. RFC 9110 §10.1.1: a server MUST ignore a
// 100-continue expectation in an HTTP/1.0 request, and §15.2: it MUST NOT send a 1xx answer to an
// HTTP/1.0 client, which knows none and reads the interim line as its answer (an empty 100). Node
// itself ignores the expectation for HTTP/1.0 (no 'checkContinue'); the pipeline did not.
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { publicCatchAll, startTestGateway, type TestGateway } from '../helpers/gateway.ts'
import { rawRequest } from '../helpers/raw.ts'
import { startUpstream, type TestUpstream } from '../helpers/upstream.ts'

let upstream: TestUpstream
let gateway: TestGateway
let port: number

beforeAll(async () => {
  upstream = await startUpstream()
  gateway = await startTestGateway(publicCatchAll(upstream.url))
  port = Number(new URL(gateway.url).port)
})

afterAll(async () => {
  await gateway?.close()
  await upstream?.close()
})

describe('Expect: 100-continue in an HTTP/1.0 request', () => {
  it('is ignored: no 1xx goes to the HTTP/1.0 client, its body is read and forwarded, its answer is the first line', async () => {
    const res = await rawRequest(port, ['POST /upload HTTP/1.0\r\nHost: gw\r\nExpect: 100-continue\r\nContent-Length: 5\r\n\r\n', 'hello'], { gapMs: 100 })
    expect(res.raw.startsWith('HTTP/1.1 200 OK\r\n')).toBe(true)
    expect(res.raw).not.toContain('100 Continue')
    expect(upstream.received.find((r) => r.url === '/upload')?.body).toBe('hello')
  })

  it('an HTTP/1.1 one is still told to send its body (control)', async () => {
    const res = await rawRequest(port, ['POST /upload11 HTTP/1.1\r\nHost: gw\r\nExpect: 100-continue\r\nContent-Length: 5\r\n\r\n', 'hello'], { gapMs: 100 })
    expect(res.raw.startsWith('HTTP/1.1 100 Continue\r\n')).toBe(true)
    expect(res.status).toBe(200)
  })
})
