// An upstream's 205 Reset Content goes out without a body (RFC 9110 §15.3.6: a server must not send
// content with one), as the functions probe found for a handler's. An upstream that sent one with
// a body had it relayed: an HTTP/2 client's stream was reset (nghttp2 ends a 205's stream with its
// head), the client getting no answer at all, and an HTTP/1.1 one got content a 205 may not have.
import { readFileSync } from 'node:fs'
import { afterAll, beforeAll, expect, it } from 'vitest'
import { Agent, request } from 'undici'
import { createPki, type TestPki } from '../helpers/certs.ts'
import { startTestGateway, type TestGateway } from '../helpers/gateway.ts'
import { h2Exchange } from '../helpers/h2-gateway.ts'
import { startUpstream, type TestUpstream } from '../helpers/upstream.ts'

let pki: TestPki
let upstream: TestUpstream
let gw: TestGateway

beforeAll(async () => {
  pki = createPki()
  upstream = await startUpstream((_req, res) => void res.writeHead(205, { 'content-type': 'text/plain', 'content-length': '6' }).end('reset!'))
  gw = await startTestGateway({
    server: { tls: { cert: pki.server.cert, key: pki.server.key }, http2: true, hosts: ['localhost'] },
    upstreams: [{ name: 'api', url: upstream.url }],
    routes: [{ id: 'form', path: '/form', upstream: 'api', public: true }],
  })
})
afterAll(async () => {
  await gw?.close()
  await upstream?.close()
  pki?.close()
})

it('over HTTP/2 the client gets the 205, without a body', async () => {
  const answer = await h2Exchange(gw.url, readFileSync(pki.ca.cert), { ':path': '/form', ':method': 'POST', 'content-type': 'application/x-www-form-urlencoded' }, 'name=x')
  expect(answer).toEqual({ status: 205, body: '', error: null })
})

it('over HTTP/1.1 the 205 has no body, its Content-Length 0, and the connection serves the next request', async () => {
  const dispatcher = new Agent({ connect: { ca: readFileSync(pki.ca.cert), servername: 'localhost' }, connections: 1 })
  try {
    for (let i = 0; i < 2; i++) {
      const res = await request(`${gw.url}/form`, { method: 'POST', body: 'name=x', headers: { 'content-type': 'application/x-www-form-urlencoded' }, dispatcher })
      expect(res.statusCode).toBe(205)
      expect(res.headers['content-length']).toBe('0')
      expect(await res.body.text()).toBe('')
    }
  } finally {
    await dispatcher.close()
  }
})
