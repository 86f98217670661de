// Found by an adversarial probe (helper). HTTP/2 lets a client send any token as :method, lower case included (HTTP/1.1's parser refuses
// `delete /x`, so only h2 reaches this). The gateway routes and authorizes the method as sent —
// statements say DELETE, `*` routes exclude TRACE — and forwards it as sent: an upstream that reads
// methods without regard to case (ASP.NET Core's routing, Werkzeug's request.method.upper()) runs
// `delete` as DELETE, which the policy denied, and `trace` as TRACE, which `*` never includes.
// The upstream here is a raw TCP server that records the request line as it arrived.
import { once } from 'node:events'
import { readFileSync } from 'node:fs'
import type { OutgoingHttpHeaders } from 'node:http2'
import { createServer, type AddressInfo, type Server } from 'node:net'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { createPki, type TestPki } from '../helpers/certs.ts'
import { startTestGateway, type TestGateway } from '../helpers/gateway.ts'
import { h2Once } from '../helpers/h2-gateway.ts'
import { AUDIENCE, startIdentityProvider, type TestIdentityProvider } from '../helpers/identity-provider.ts'

let pki: TestPki
let ca: Buffer
let raw: Server
let requestLines: string[] = []
let gateway: TestGateway
let idp: TestIdentityProvider
let token: string

beforeAll(async () => {
  pki = createPki()
  ca = readFileSync(pki.ca.cert)
  // Records each request line, answers 200 to anything (as a lenient upstream would).
  raw = createServer((socket) => {
    let buffered = ''
    socket.on('data', (chunk) => {
      buffered += chunk.toString('latin1')
      let end: number
      while ((end = buffered.indexOf('\r\n\r\n')) !== -1) {
        requestLines.push(buffered.slice(0, buffered.indexOf('\r\n')))
        buffered = buffered.slice(end + 4)
        socket.write('HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok')
      }
    })
    socket.on('error', () => {})
  })
  raw.listen(0, '127.0.0.1')
  await once(raw, 'listening')
  const upstreamUrl = `http://127.0.0.1:${(raw.address() as AddressInfo).port}`
  idp = await startIdentityProvider()
  gateway = await startTestGateway({
    server: { tls: { cert: pki.server.cert, key: pki.server.key }, http2: true, hosts: ['localhost'] },
    issuers: [{ name: 'corp', issuer: idp.issuer, audiences: [AUDIENCE], algorithms: ['ES256', 'RS256'] }],
    roles: [{ name: 'editor', assumed_by: [{ issuer: 'corp' }], policies: ['no-delete'] }],
    policies: [{
      name: 'no-delete',
      statements: [
        { sid: 'AllowAll', effect: 'allow', actions: ['*'], routes: ['records'] },
        { sid: 'NeverDelete', effect: 'deny', actions: ['DELETE'], routes: ['records'] },
      ],
    }],
    upstreams: [{ name: 'api', url: upstreamUrl, headers: { Authorization: 'Bearer upstream-secret' } }],
    routes: [
      { id: 'records', path: '/records/*', upstream: 'api' },
      { id: 'public', path: '/public/*', upstream: 'api', public: true },
    ],
  })
  token = await idp.mint({ sub: 'svc-editor' })
})

afterAll(async () => {
  await gateway?.close()
  raw?.close()
  await idp?.stop()
  pki?.close()
})

/** One request on an HTTP/2 session of its own. */
const h2 = (headers: OutgoingHttpHeaders) => h2Once(gateway.url, ca, headers)

const methodsReceived = () => requestLines.map((line) => line.split(' ')[0] as string)

describe('h2 :method in another letter case', () => {
  it('control: DELETE is denied by the deny statement and never forwarded', async () => {
    requestLines = []
    const res = await h2({ ':method': 'DELETE', ':path': '/records/1', authorization: `Bearer ${token}` })
    expect(res.status).toBe(403)
    expect(methodsReceived()).toEqual([])
  })

  it('"delete" over h2 does not get past the statement that denies DELETE', async () => {
    requestLines = []
    const res = await h2({ ':method': 'delete', ':path': '/records/1', authorization: `Bearer ${token}` })
    // Either refused (400/403/405) or decided as DELETE: never forwarded as a method that a
    // case-insensitive upstream reads as DELETE.
    expect(methodsReceived().map((m) => m.toUpperCase())).not.toContain('DELETE')
    expect(res.status).toBeGreaterThanOrEqual(400)
  })

  it('"trace" over h2 is refused like TRACE on a "*" route, never forwarded with the upstream credential', async () => {
    requestLines = []
    const control = await h2({ ':method': 'TRACE', ':path': '/public/x' })
    expect(control.status).toBe(405)
    const res = await h2({ ':method': 'trace', ':path': '/public/x' })
    expect(methodsReceived().map((m) => m.toUpperCase())).not.toContain('TRACE')
    expect(res.status).toBeGreaterThanOrEqual(400)
  })
})
