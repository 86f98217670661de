// Found by an adversarial probe (frontdoor3): a request asking to switch to cleartext HTTP/2
// (`Connection: Upgrade, HTTP2-Settings`, `Upgrade: h2c`) was refused 400, on every route. That is
// what `curl --http2 http://…` sends, and Java's HttpClient (HTTP/2 by default) on every http:// URL:
// such clients got 400 for any request to a gateway without TLS. RFC 9110 §7.8 lets a server ignore
// an Upgrade it does not offer, as nginx does; node:http handed the connection over as a protocol
// switch, though, and the body was never read. The gateway now upgrades only to WebSocket: any
// other Upgrade is served as the HTTP/1.1 request it also is, with the Upgrade never forwarded
// (h2c smuggling through a proxy that passes it on), and the connection closed after the answer,
// as node:http's parser takes the bytes after such a head for the other protocol.
import { readFileSync } from 'node:fs'
import { connect } from 'node:tls'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { createPki, type TestPki } from '../helpers/certs.ts'
import type { TestGateway } from '../helpers/gateway.ts'
import { startH2Gateway } from '../helpers/h2-gateway.ts'
import { rawRequest } from '../helpers/raw.ts'
import { startUpstream, type TestUpstream } from '../helpers/upstream.ts'
import { startWebSocketGateway } from '../helpers/websocket.ts'

const H2C = 'Connection: Upgrade, HTTP2-Settings\r\nUpgrade: h2c\r\nHTTP2-Settings: AAMAAABkAARAAAAAAAIAAAAA\r\n'

let upstream: TestUpstream
let gateway: TestGateway
let port: number
let pki: TestPki
let h2Gateway: TestGateway

beforeAll(async () => {
  upstream = await startUpstream()
  ;({ gateway, port } = await startWebSocketGateway(upstream.url))
  pki = createPki()
  h2Gateway = await startH2Gateway(pki, upstream.url)
})
afterAll(async () => {
  await gateway?.close()
  await h2Gateway?.close()
  await upstream?.close()
  pki?.close()
})

/** What reached the upstream of one request, by its path. */
function received(path: string) {
  const found = upstream.received.find((r) => r.url === path)
  return found && { method: found.method, bodyBytes: found.bodyBytes, upgrade: found.headers.upgrade, settings: found.headers['http2-settings'], connection: found.headers.connection }
}

describe('an HTTP/1.1 request asking to upgrade to h2c (curl --http2, Java HttpClient)', () => {
  it.each([
    ['a GET', 'GET', '/h2c/get', ''],
    ['a POST with a Content-Length body', 'POST', '/h2c/post', 'Content-Length: 5\r\n\r\nhello'],
    ['a POST with a chunked body', 'POST', '/h2c/chunked', 'Transfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n'],
    ['a GET on a WebSocket route', 'GET', '/ws', ''],
  ])('%s is served over HTTP/1.1, the Upgrade not forwarded, and its connection closed after the answer', async (_name, method, path, rest) => {
    const res = await rawRequest(port, `${method} ${path} HTTP/1.1\r\nHost: gw\r\n${H2C}${rest === '' ? '\r\n' : rest}`, { timeout: 5_000, untilClosed: true })
    expect({ status: res.status, connection: res.headers.connection, closed: res.closed }).toEqual({ status: 200, connection: 'close', closed: true })
    expect(received(path)).toMatchObject({ method, bodyBytes: method === 'POST' ? 5 : 0, upgrade: undefined, settings: undefined })
    expect(received(path)?.connection).not.toMatch(/upgrade/i)
  })

  it('a request pipelined behind it is not answered in its place: the connection ends after the first answer', async () => {
    const res = await rawRequest(port, `GET /h2c/first HTTP/1.1\r\nHost: gw\r\n${H2C}\r\nGET /h2c/behind HTTP/1.1\r\nHost: gw\r\n\r\n`, { timeout: 5_000, untilClosed: true })
    expect({ status: res.status, connection: res.headers.connection, closed: res.closed }).toEqual({ status: 200, connection: 'close', closed: true })
    expect(res.raw.match(/HTTP\/1\.1 \d{3}/g)).toHaveLength(1)
  })

  it('a WebSocket handshake is still an upgrade, and one on a route without websocket: true still refused', async () => {
    const refused = await rawRequest(port, 'GET /plain HTTP/1.1\r\nHost: gw\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n', { timeout: 5_000 })
    expect({ status: refused.status, detail: (JSON.parse(refused.body) as { detail: string }).detail }).toEqual({ status: 400, detail: 'Route "all" does not allow protocol upgrades.' })
  })

  it('on the HTTP/2 listener\'s HTTP/1.1 connections (node:http2\'s own request class) the same', async () => {
    const socket = connect({ host: '127.0.0.1', port: Number(new URL(h2Gateway.url).port), ca: readFileSync(pki.ca.cert), servername: 'localhost', ALPNProtocols: ['http/1.1'] })
    socket.on('error', () => {})
    let answer = ''
    socket.on('data', (chunk: Buffer) => (answer += chunk.toString('latin1')))
    socket.write(`POST /h2c/tls HTTP/1.1\r\nHost: localhost\r\n${H2C}Content-Length: 5\r\n\r\nhello`)
    await new Promise((resolve) => socket.once('close', resolve))
    expect(answer).toMatch(/^HTTP\/1\.1 200 /)
    expect(answer).toMatch(/\r\nconnection: close\r\n/i)
    expect(received('/h2c/tls')).toMatchObject({ method: 'POST', bodyBytes: 5, upgrade: undefined, settings: undefined })
  })
})
