// A handler's 205 Reset Content goes out without its body (RFC 9110 §15.3.6: a server must not send
// content with one), as a 204 does. Its body went out with it: an HTTP/2 client's stream was reset
// (NGHTTP2_PROTOCOL_ERROR), the client getting no answer at all, and an HTTP/1.1 one got content a
// 205 may not have (a probe).
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { afterAll, beforeAll, expect, it } from 'vitest'
import { Agent, request } from 'undici'
import { createPki, type TestPki } from '../helpers/certs.ts'
import { startTestGateway, type TestGateway } from '../helpers/gateway.ts'
import { h2Exchange } from '../helpers/h2-gateway.ts'

const FIXTURES = fileURLToPath(new URL('../fixtures/functions/', import.meta.url))
let pki: TestPki
let gw: TestGateway

beforeAll(async () => {
  pki = createPki()
  gw = await startTestGateway({
    server: { tls: { cert: pki.server.cert, key: pki.server.key }, http2: true, hosts: ['localhost'] },
    functions: [{ name: 'reset', module: join(FIXTURES, 'reset-content.mjs'), concurrency: 1 }],
    routes: [{ id: 'reset', path: '/reset', function: 'reset', public: true }],
  })
})
afterAll(async () => {
  await gw?.close()
  pki?.close()
})

it('over HTTP/2 the client gets the 205, without a body', async () => {
  const answer = await h2Exchange(gw.url, readFileSync(pki.ca.cert), { ':path': '/reset', ':method': 'POST', 'content-type': 'application/x-www-form-urlencoded' }, 'name=x')
  expect(answer).toEqual({ status: 205, body: '', error: null })
})

it('over HTTP/1.1 the 205 has no body, its Content-Length 0', async () => {
  const dispatcher = new Agent({ connect: { ca: readFileSync(pki.ca.cert), servername: 'localhost' } })
  try {
    const res = await request(`${gw.url}/reset`, { method: 'POST', body: 'name=x', headers: { 'content-type': 'application/x-www-form-urlencoded' }, dispatcher })
    expect(res.statusCode).toBe(205)
    expect(res.headers['content-length']).toBe('0')
    expect(await res.body.text()).toBe('')
  } finally {
    await dispatcher.close()
  }
})
