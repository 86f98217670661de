// Found by the front-door probe: node:http's parser takes "HTTP/2.0" in an HTTP/1 request line (it
// refuses 1.2 and 3.0), and the gateway read `httpVersionMajor === 2` as "came over node:http2":
// one unauthenticated `GET / HTTP/2.0` on any listener threw in the request's context (no HTTP/2
// stream to read), an uncaught exception that drained and ended the whole gateway (`bouncer serve`
// exits 1). Such a request is refused as the parser refuses other versions: 400 bad_request,
// recorded, the connection closed, the gateway serving on.
import { mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { connect as tlsConnect } from 'node:tls'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { searchAudit } from '../../src/audit/search.ts'
import { createPki, type TestPki } from '../helpers/certs.ts'
import { publicCatchAll, startTestGateway, type TestGateway } from '../helpers/gateway.ts'
import { h2Once } from '../helpers/h2-gateway.ts'
import { rawRequest } from '../helpers/raw.ts'
import { startUpstream, type TestUpstream } from '../helpers/upstream.ts'
import { waitFor } from '../helpers/wait.ts'

let pki: TestPki
let dir: string
let upstream: TestUpstream
let plain: TestGateway
let secure: TestGateway

beforeAll(async () => {
  pki = createPki()
  dir = mkdtempSync(join(tmpdir(), 'bouncer-http1-version-'))
  upstream = await startUpstream()
  const common = publicCatchAll(upstream.url)
  plain = await startTestGateway({ ...common, audit: { sinks: [{ type: 'sqlite', path: join(dir, 'audit.db') }], spill_dir: join(dir, 'spill'), flush_interval: '20ms' } })
  secure = await startTestGateway({ ...common, server: { tls: { cert: pki.server.cert, key: pki.server.key }, http2: true, hosts: ['localhost'] } })
})

afterAll(async () => {
  await plain?.close()
  await secure?.close()
  await upstream?.close()
  pki?.close()
  if (dir) rmSync(dir, { recursive: true, force: true })
})

/** One raw HTTP/1 exchange over TLS (ALPN http/1.1), read until the gateway closes. */
function rawTls(port: number, data: string): Promise<string> {
  return new Promise((resolve) => {
    const socket = tlsConnect({ port, host: '127.0.0.1', ca: readFileSync(pki.ca.cert), servername: 'localhost', ALPNProtocols: ['http/1.1'] })
    let text = ''
    socket.on('secureConnect', () => socket.write(data))
    socket.on('data', (chunk: Buffer) => (text += chunk.toString('latin1')))
    socket.on('error', () => {})
    socket.on('close', () => resolve(text))
  })
}

describe('an HTTP/1 request line that says HTTP/2.0', () => {
  it('is 400 bad_request with the connection closed, recorded, never forwarded; the gateway serves on', async () => {
    const port = Number(new URL(plain.url).port)
    const res = await rawRequest(port, 'GET /two HTTP/2.0\r\nHost: gw\r\nX-Request-Id: says-http-2-0\r\n\r\n', { timeout: 3_000, untilClosed: true })
    expect(res.status).toBe(400)
    expect(JSON.parse(res.body)).toMatchObject({ code: 'bad_request', request_id: 'says-http-2-0' })
    expect(res.closed).toBe(true)
    expect(upstream.received.map((r) => r.url)).not.toContain('/two')
    const db = { type: 'sqlite' as const, path: join(dir, 'audit.db') }
    await waitFor(async () => (await searchAudit(db, { limit: 50 }).catch(() => [])).some((r) => r.request_id === 'says-http-2-0'), 'its audit record')
    const [record] = (await searchAudit(db, { limit: 50 })).filter((r) => r.request_id === 'says-http-2-0')
    expect(record).toMatchObject({ status: 400, code: 'bad_request' })

    const after = await rawRequest(port, 'GET /after HTTP/1.1\r\nHost: gw\r\n\r\n', { timeout: 3_000 })
    expect(after.status).toBe(200)
  })

  it('a request line with no version (HTTP/0.9 to the parser) is refused too, not served without a Host', async () => {
    const port = Number(new URL(plain.url).port)
    const res = await rawRequest(port, 'GET /nine\r\n\r\n', { timeout: 3_000 })
    expect(res.status).toBe(400)
    expect(upstream.received.map((r) => r.url)).not.toContain('/nine')
  })

  it('as a WebSocket upgrade or a CONNECT, the same: refused, and the gateway serves on', async () => {
    const port = Number(new URL(plain.url).port)
    const upgrade = await rawRequest(port, 'GET /ws HTTP/2.0\r\nHost: gw\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n', { timeout: 3_000 })
    expect(upgrade.status).toBe(400)
    const tunnel = await rawRequest(port, 'CONNECT gw:443 HTTP/2.0\r\nHost: gw:443\r\n\r\n', { timeout: 3_000 })
    expect(tunnel.status).toBe(400)
    expect((await rawRequest(port, 'GET /after HTTP/1.1\r\nHost: gw\r\n\r\n', { timeout: 3_000 })).status).toBe(200)
  })

  it('on a TLS listener with HTTP/2 (HTTP/1.1 alongside), the same; real HTTP/2 clients are served', async () => {
    const port = Number(new URL(secure.url).port)
    const text = await rawTls(port, 'GET /two HTTP/2.0\r\nHost: localhost\r\n\r\n')
    expect(text.startsWith('HTTP/1.1 400 ')).toBe(true)
    expect(text).toContain('"code":"bad_request"')
    const h2 = await h2Once(secure.url, readFileSync(pki.ca.cert), { ':path': '/h2' })
    expect(h2.status).toBe(200)
    expect(upstream.received.map((r) => r.url)).toContain('/h2')
  })
})
