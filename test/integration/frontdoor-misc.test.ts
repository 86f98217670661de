// Found by an adversarial probe (helper): an HTTP/1.1 CONNECT refusal had no audit record, Connection: Authorization did not stop a forward_authorization route forwarding it, and HTTP/2 cookie crumbs reached the upstream as several Cookie headers.
import { mkdtempSync, readFileSync, rmSync } from 'node:fs'
import type { OutgoingHttpHeaders } from 'node:http2'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { searchAudit } from '../../src/audit/search.ts'
import { createPki, type TestPki } from '../helpers/certs.ts'
import { startTestGateway, type TestGateway } from '../helpers/gateway.ts'
import { h2Once } from '../helpers/h2-gateway.ts'
import { startUpstream, type TestUpstream } from '../helpers/upstream.ts'
import { waitFor } from '../helpers/wait.ts'

let pki: TestPki
let ca: Buffer
let dir: string
let upstream: TestUpstream
let gateway: TestGateway
let port: number
const H = 'Host: gw\r\n'

beforeAll(async () => {
  pki = createPki()
  ca = readFileSync(pki.ca.cert)
  dir = mkdtempSync(join(tmpdir(), 'bouncer-frontdoor-'))
  upstream = await startUpstream()
  gateway = await startTestGateway({
    server: { tls: { cert: pki.server.cert, key: pki.server.key }, http2: true, hosts: ['localhost'] },
    audit: { sinks: [{ type: 'sqlite', path: join(dir, 'audit.db') }], spill_dir: join(dir, 'spill'), flush_interval: '20ms' },
    upstreams: [{ name: 'api', url: upstream.url }],
    limits: [{ name: 'per-cookie', key: 'header:Cookie', rate: '1/m', burst: 1 }],
    routes: [
      { id: 'fa', path: '/fa/*', upstream: 'api', public: true, forward_authorization: true },
      { id: 'by-cookie', path: '/by-cookie', upstream: 'api', public: true, limits: ['per-cookie'] },
      { id: 'all', path: '/*', upstream: 'api', public: true },
    ],
  })
  port = Number(new URL(gateway.url).port)
})

afterAll(async () => {
  await gateway?.close()
  await upstream?.close()
  pki?.close()
  if (dir) rmSync(dir, { recursive: true, force: true })
})

/** One request on an HTTP/2 session of its own. */
const h2 = (headers: OutgoingHttpHeaders) => h2Once(gateway.url, ca, headers)

/** HTTP/1.1 over TLS, raw: the listener is TLS here. */
async function rawTls(data: string): Promise<{ status: number; body: string }> {
  const { connect: tlsConnect } = await import('node:tls')
  return new Promise((resolve) => {
    const socket = tlsConnect({ port, host: '127.0.0.1', ca, servername: 'localhost', ALPNProtocols: ['http/1.1'] })
    let text = ''
    const done = () => {
      const end = text.indexOf('\r\n\r\n')
      resolve({ status: Number(text.slice(9, 12)) || 0, body: end === -1 ? '' : text.slice(end + 4) })
    }
    socket.on('secureConnect', () => socket.write(data))
    socket.on('data', (c) => (text += c.toString('latin1')))
    socket.on('close', done)
    socket.on('error', () => {})
    setTimeout(() => socket.destroy(), 1500)
  })
}

describe('HTTP/2 cookie crumbs', () => {
  it('are joined into one Cookie header before going upstream over HTTP/1.1 (RFC 9113 §8.2.3)', async () => {
    upstream.received.length = 0
    const res = await h2({ ':path': '/c', cookie: ['a=1', 'b=2'] })
    expect(res.status).toBe(200)
    const raw = upstream.received[0]?.rawHeaders ?? []
    const cookieLines = raw.filter((_, i) => i % 2 === 0 && raw[i]?.toLowerCase() === 'cookie')
    expect(cookieLines).toHaveLength(1)
    expect(upstream.received[0]?.headers.cookie).toBe('a=1; b=2')
  })

  it('a limit keyed by header:Cookie counts the joined crumbs: each set of cookies its own budget', async () => {
    // burst 1: a second request with the same cookies is refused, one with other cookies is not.
    expect((await h2({ ':path': '/by-cookie', cookie: ['tenant=a', 'session=1'] })).status).toBe(200)
    expect((await h2({ ':path': '/by-cookie', cookie: ['tenant=a', 'session=1'] })).status).toBe(429)
    expect((await h2({ ':path': '/by-cookie', cookie: ['tenant=b', 'session=1'] })).status).toBe(200)
    expect((await h2({ ':path': '/by-cookie', cookie: 'tenant=c; session=1' })).status).toBe(200)
    // The same cookies sent as one header or as crumbs are one caller.
    expect((await h2({ ':path': '/by-cookie', cookie: ['tenant=c', 'session=1'] })).status).toBe(429)
  })
})

describe('Connection naming Authorization', () => {
  it('removes an Authorization the client marked hop-by-hop, even on a forward_authorization route (SPEC: every header named in Connection)', async () => {
    upstream.received.length = 0
    const res = await rawTls(`GET /fa/x HTTP/1.1\r\n${H}Authorization: Bearer for-the-gateway-only\r\nConnection: close, authorization\r\n\r\n`)
    expect(res.status).toBe(200)
    expect(upstream.received[0]?.headers.authorization).toBeUndefined()
  })
})

describe('audit of refusals', () => {
  it('an HTTP/1.1 CONNECT refused with 400 bad_path has an audit record', async () => {
    const before = Date.now()
    const res = await rawTls('CONNECT internal.example:443 HTTP/1.1\r\nHost: internal.example:443\r\n\r\n')
    expect(res.status).toBe(400)
    const body = JSON.parse(res.body) as { code: string; request_id: string }
    expect(body.code).toBe('bad_path')
    // A later request, so the refusal (if it was queued at all) has been flushed by the time it shows.
    const marker = await h2({ ':path': '/after-connect', 'x-request-id': `after-connect-${before}` })
    expect(marker.status).toBe(200)
    const db = { type: 'sqlite' as const, path: join(dir, 'audit.db') }
    await waitFor(async () => (await searchAudit(db, { limit: 100 }).catch(() => [])).some((r) => r.request_id === `after-connect-${before}`), 'the later request audited')
    const records = await searchAudit(db, { limit: 100 })
    expect(records.find((r) => r.request_id === body.request_id)).toMatchObject({ status: 400, code: 'bad_path' })
  })
})
