// Workload identity from client certificates (issue 16, point 3): with server.tls.client_ca and an
// x509 issuer, a route that accepts client_cert takes the certificate's URI SAN (a SPIFFE ID), else
// its CN, as the subject; trust rules match it with globs; a certificate from another CA, expired
// or not yet valid is 401 client_cert_required with a detail that says which — over HTTP/1.1 and h2.
import { once } from 'node:events'
import { mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { connect as h2connect } from 'node:http2'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { connect as tlsConnect } from 'node:tls'
import { Agent, request } from 'undici'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { stringify } from 'yaml'
import { searchAudit } from '../../src/audit/search.ts'
import { loadConfigText } from '../../src/config/index.ts'
import { createPki, opensslDate, type Issued, type TestPki } from '../helpers/certs.ts'
import { startTestGateway, type TestGateway } from '../helpers/gateway.ts'
import { startUpstream, type TestUpstream } from '../helpers/upstream.ts'
import { waitFor } from '../helpers/wait.ts'

const DAY = 86_400_000
let pki: TestPki
let ca: Buffer
let dir: string
let upstream: TestUpstream
let gateway: TestGateway
let certs: Record<'loader' | 'reporter' | 'cnOnly' | 'stranger' | 'expired' | 'future' | 'otherCa' | 'twoUris', Issued>

function gatewayConfig(clientAuth: 'optional' | 'require'): Record<string, unknown> {
  return {
    server: { tls: { cert: pki.server.cert, key: pki.server.key, client_ca: pki.ca.cert, client_auth: clientAuth }, http2: true },
    audit: { sinks: [{ type: 'sqlite', path: join(dir, `audit-${clientAuth}.db`) }], spill_dir: join(dir, `spill-${clientAuth}`), flush_interval: '20ms' },
    issuers: [{ name: 'mesh', type: 'x509', ca: pki.ca.cert }],
    roles: [
      { name: 'etl', assumed_by: [{ issuer: 'mesh', subject: 'spiffe://prod/ns/etl/*' }], policies: ['read'] },
      { name: 'legacy', assumed_by: [{ issuer: 'mesh', subject: 'batch-*' }], policies: ['read'] },
    ],
    policies: [{ name: 'read', statements: [{ sid: 'Read', effect: 'allow', actions: ['GET'], routes: ['data', 'either'] }] }],
    upstreams: [{ name: 'api', url: upstream.url, identity_assertion: true }],
    routes: [
      { id: 'data', path: '/data/*', upstream: 'api', accept: ['client_cert'] },
      { id: 'either', path: '/either/*', upstream: 'api', accept: ['client_cert', 'bearer'] },
      { id: 'open', path: '/open', upstream: 'api', public: true },
    ],
  }
}

beforeAll(async () => {
  pki = createPki()
  ca = readFileSync(pki.ca.cert)
  dir = mkdtempSync(join(tmpdir(), 'bouncer-mtls-'))
  const client = (name: string, options: Parameters<TestPki['ca']['issue']>[1] = { usage: 'client' }) => pki.ca.issue(name, options)
  certs = {
    loader: client('loader', { usage: 'client', san: ['URI:spiffe://prod/ns/etl/sa/loader', 'DNS:loader.etl.svc'] }),
    reporter: client('reporter', { usage: 'client', san: ['URI:spiffe://prod/ns/reports/sa/reporter'] }),
    cnOnly: client('batch-nightly', { usage: 'client', subject: '/CN=batch-nightly/O=Example' }),
    stranger: client('stranger', { usage: 'client', subject: '/O=Example' }),
    expired: client('expired', { usage: 'client', san: ['URI:spiffe://prod/ns/etl/sa/old'], notBefore: '20200101000000Z', notAfter: '20200102000000Z' }),
    future: client('future', { usage: 'client', san: ['URI:spiffe://prod/ns/etl/sa/new'], notBefore: opensslDate(new Date(Date.now() + 30 * DAY)), notAfter: opensslDate(new Date(Date.now() + 60 * DAY)) }),
    otherCa: pki.otherCa.issue('impostor', { usage: 'client', san: ['URI:spiffe://prod/ns/etl/sa/loader'] }),
    twoUris: client('two', { usage: 'client', san: ['URI:spiffe://prod/ns/etl/sa/a', 'URI:spiffe://prod/ns/etl/sa/b'] }),
  }
  upstream = await startUpstream()
  gateway = await startTestGateway(gatewayConfig('optional'))
})

afterAll(async () => {
  await gateway?.close()
  await upstream?.close()
  pki?.close()
  if (dir) rmSync(dir, { recursive: true, force: true })
})

interface Answer {
  status: number
  body: Record<string, unknown>
}

/** One request over HTTP/1.1 (undici) with this client certificate, or none. */
async function viaHttp1(url: string, cert: Issued | null, headers: Record<string, string> = {}): Promise<Answer> {
  const agent = new Agent({ connect: { ca, servername: 'localhost', ...(cert ? { cert: readFileSync(cert.cert), key: readFileSync(cert.key) } : {}) } })
  try {
    const res = await request(url, { dispatcher: agent, headers })
    return { status: res.statusCode, body: (await res.body.json()) as Record<string, unknown> }
  } finally {
    await agent.close()
  }
}

/** The same over h2 (node:http2). */
async function viaH2(url: string, cert: Issued | null): Promise<Answer> {
  const { origin, pathname } = new URL(url)
  const session = h2connect(origin, { ca, servername: 'localhost', ...(cert ? { cert: readFileSync(cert.cert), key: readFileSync(cert.key) } : {}) })
  session.on('error', () => {})
  try {
    const stream = session.request({ ':path': pathname })
    const [headers] = (await once(stream, 'response')) as [Record<string, string>]
    const chunks: Buffer[] = []
    for await (const chunk of stream) chunks.push(chunk as Buffer)
    return { status: Number(headers[':status']), body: JSON.parse(Buffer.concat(chunks).toString('utf8')) as Record<string, unknown> }
  } finally {
    session.close()
  }
}

function assertionClaims(body: Record<string, unknown>): Record<string, unknown> {
  const token = (body.headers as Record<string, string>)['x-bouncer-assertion'] as string
  return JSON.parse(Buffer.from(token.split('.')[1] as string, 'base64url').toString('utf8')) as Record<string, unknown>
}

describe('client certificates as workload identity', () => {
  for (const [protocol, send] of [['HTTP/1.1', viaHttp1], ['h2', viaH2]] as const) {
    it(`takes the URI SAN (a SPIFFE ID) as the subject, matched by trust-rule globs (${protocol})`, async () => {
      const ok = await send(`${gateway.url}/data/daily`, certs.loader)
      expect(ok.status).toBe(200)
      expect(assertionClaims(ok.body)).toMatchObject({ sub: 'spiffe://prod/ns/etl/sa/loader', roles: ['etl'], idp: 'CN=Test CA, O=Bouncer tests' })
      // Another workload of the same CA, outside the glob: verified, but no role.
      const other = await send(`${gateway.url}/data/daily`, certs.reporter)
      expect(other.status).toBe(403)
      expect(other.body).toMatchObject({ code: 'no_role' })
      expect(String(other.body.detail)).toContain('spiffe://prod/ns/reports/sa/reporter')
    })

    it(`refuses what it cannot accept, saying which (${protocol})`, async () => {
      const cases: Array<[Issued | null, RegExp]> = [
        [null, /presented none/],
        [certs.expired, /^The client certificate "CN=expired" expired at 2020-01-02T00:00:00\.000Z\.$/],
        [certs.future, /is not valid before /],
        [certs.otherCa, /is signed by another CA \("CN=Other CA, O=Bouncer tests"\), not one of server\.tls\.client_ca/],
        [certs.twoUris, /has 2 URI SANs/],
        [certs.stranger, /names no workload: it has no URI SAN and no CN/],
      ]
      for (const [cert, detail] of cases) {
        const answer = await send(`${gateway.url}/data/daily`, cert)
        expect(answer.status, String(detail)).toBe(401)
        expect(answer.body.code).toBe('client_cert_required')
        expect(String(answer.body.detail)).toMatch(detail)
      }
    })
  }

  it('says which usage a certificate not for client authentication lacks', async () => {
    const encipherOnly = pki.ca.issue('encipher-only', { usage: 'client', keyUsage: 'keyEncipherment', san: ['URI:spiffe://prod/ns/etl/sa/encipher'] })
    const serverOnly = pki.ca.issue('server-only', { usage: 'server', san: ['URI:spiffe://prod/ns/etl/sa/server'] })
    expect((await viaHttp1(`${gateway.url}/data/x`, encipherOnly)).body).toMatchObject({ code: 'client_cert_required', detail: 'The client certificate "CN=encipher-only" is not for client authentication (its key usage has neither digitalSignature nor keyAgreement).' })
    expect((await viaHttp1(`${gateway.url}/data/x`, serverOnly)).body).toMatchObject({ code: 'client_cert_required', detail: 'The client certificate "CN=server-only" is not for client authentication (its extended key usage lacks clientAuth).' })
  })

  it('takes the CN when there is no URI SAN', async () => {
    const answer = await viaHttp1(`${gateway.url}/data/x`, certs.cnOnly)
    expect(answer.status).toBe(200)
    expect(assertionClaims(answer.body)).toMatchObject({ sub: 'batch-nightly', roles: ['legacy'] })
  })

  it('with client_auth: optional, a connection without a certificate still reaches other routes', async () => {
    expect((await viaHttp1(`${gateway.url}/open`, null)).status).toBe(200)
    // accept: [client_cert, bearer]: the credential the request carries decides; with neither,
    // the first kind listed says what is missing.
    const neither = await viaHttp1(`${gateway.url}/either/x`, null)
    expect([neither.status, neither.body.code]).toEqual([401, 'client_cert_required'])
    const token = await viaHttp1(`${gateway.url}/either/x`, null, { authorization: 'Bearer not-a-jwt' })
    expect([token.status, token.body.code]).toEqual([401, 'malformed_token'])
    expect((await viaHttp1(`${gateway.url}/either/x`, certs.loader)).status).toBe(200)
  })

  it('serves resumed sessions with the certificate of the first handshake', async () => {
    const { port } = new URL(gateway.url)
    let session: Buffer | undefined
    const statuses: Array<[boolean, string]> = []
    for (let i = 0; i < 2; i++) {
      const socket = tlsConnect({ host: '127.0.0.1', port: Number(port), ca, servername: 'localhost', cert: readFileSync(certs.loader.cert), key: readFileSync(certs.loader.key), session, ALPNProtocols: ['http/1.1'] })
      socket.on('session', (ticket: Buffer) => (session = ticket))
      await once(socket, 'secureConnect')
      const reused = socket.isSessionReused()
      socket.write('GET /data/resumed HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n')
      let text = ''
      for await (const chunk of socket) text += (chunk as Buffer).toString('latin1')
      statuses.push([reused, text.split('\r\n')[0] as string])
      await waitFor(() => session !== undefined, 'a session ticket')
    }
    expect(statuses).toEqual([[false, 'HTTP/1.1 200 OK'], [true, 'HTTP/1.1 200 OK']])
  })

  it('audits the certificate\'s identity as credential client_cert', async () => {
    await viaHttp1(`${gateway.url}/data/audited`, certs.loader, { 'x-request-id': 'mtls-audited' })
    const db = { type: 'sqlite' as const, path: join(dir, 'audit-optional.db') }
    await waitFor(async () => (await searchAudit(db, { limit: 200 }).catch(() => [])).some((r) => r.request_id === 'mtls-audited'), 'the audit record')
    const record = (await searchAudit(db, { limit: 200 })).find((r) => r.request_id === 'mtls-audited')
    expect(record).toMatchObject({ status: 200, credential: 'client_cert', subject: 'spiffe://prod/ns/etl/sa/loader', issuer: 'CN=Test CA, O=Bouncer tests', client_id: null, roles: ['etl'] })
  })

  it('names the subject of an expired or not yet valid certificate in the 401\'s audit record, not of another CA\'s', async () => {
    const db = { type: 'sqlite' as const, path: join(dir, 'audit-optional.db') }
    const cases: Array<[string, Issued, Record<string, unknown>]> = [
      ['mtls-expired', certs.expired, { credential: 'client_cert', subject: 'spiffe://prod/ns/etl/sa/old', issuer: 'CN=Test CA, O=Bouncer tests' }],
      ['mtls-future', certs.future, { credential: 'client_cert', subject: 'spiffe://prod/ns/etl/sa/new', issuer: 'CN=Test CA, O=Bouncer tests' }],
      // Signed by another CA: whatever it names is the sender's word.
      ['mtls-other-ca', certs.otherCa, { credential: null, subject: null, issuer: null }],
    ]
    for (const [requestId, cert, named] of cases) {
      expect((await viaHttp1(`${gateway.url}/data/audited`, cert, { 'x-request-id': requestId })).status).toBe(401)
      await waitFor(async () => (await searchAudit(db, { limit: 200 }).catch(() => [])).some((r) => r.request_id === requestId), 'the audit record')
      const record = (await searchAudit(db, { limit: 200 })).find((r) => r.request_id === requestId)
      expect(record, requestId).toMatchObject({ status: 401, code: 'client_cert_required', ...named })
    }
  })
})

describe('a certificate the handshake refused for its dates', () => {
  it('never authenticates its connection: an h2 session opened before notBefore is still refused once it has passed', async () => {
    const notBeforeMs = Math.ceil((Date.now() + 3_000) / 1000) * 1000
    const soon = pki.ca.issue('soon', { usage: 'client', san: ['URI:spiffe://prod/ns/etl/sa/soon'], notBefore: opensslDate(new Date(notBeforeMs)), notAfter: opensslDate(new Date(notBeforeMs + DAY)) })
    const session = h2connect(new URL(gateway.url).origin, { ca, servername: 'localhost', cert: readFileSync(soon.cert), key: readFileSync(soon.key) })
    session.on('error', () => {})
    const get = async (): Promise<Answer> => {
      const stream = session.request({ ':path': '/data/daily' })
      const [headers] = (await once(stream, 'response')) as [Record<string, string>]
      const chunks: Buffer[] = []
      for await (const chunk of stream) chunks.push(chunk as Buffer)
      return { status: Number(headers[':status']), body: JSON.parse(Buffer.concat(chunks).toString('utf8')) as Record<string, unknown> }
    }
    try {
      const early = await get()
      expect(early.status).toBe(401)
      expect(String(early.body.detail)).toMatch(/"CN=soon" is not valid before /)
      await waitFor(() => Date.now() > notBeforeMs + 500, 'the certificate\'s notBefore to pass')
      // OpenSSL refused this handshake: the session stays refused, as a new one would now be accepted.
      const later = await get()
      expect(later.status, JSON.stringify(later.body)).toBe(401)
      expect(later.body.code).toBe('client_cert_required')
      expect((await viaH2(`${gateway.url}/data/daily`, soon)).status).toBe(200)
    } finally {
      session.close()
    }
  })
})

describe('client_auth: require', () => {
  let strict: TestGateway
  beforeAll(async () => {
    strict = await startTestGateway(gatewayConfig('require'))
  })
  afterAll(async () => {
    await strict?.close()
  })

  it('refuses the handshake without a valid certificate, and serves one with', async () => {
    await expect(viaHttp1(`${strict.url}/open`, null)).rejects.toThrow()
    await expect(viaHttp1(`${strict.url}/open`, certs.otherCa)).rejects.toThrow()
    expect((await viaHttp1(`${strict.url}/data/x`, certs.loader)).status).toBe(200)
    await waitFor(() => strict.logs.some((line) => line.includes('TLS handshake failed')), 'the refused handshakes in the log')
  })
})

describe('bouncer check', () => {
  const errors = (config: Record<string, unknown>) =>
    loadConfigText(stringify(config), join(pki.dir, 'check.yaml')).diagnostics.filter((d) => d.severity === 'error').map((d) => `${d.path.join('.')}: ${d.message}`)
  const route = { id: 'r', path: '/r', upstream: 'api', accept: ['client_cert'] }
  const upstreams = [{ name: 'api', url: 'http://127.0.0.1:1' }]

  it('refuses a route accepting client_cert on a listener that asks for no certificate', () => {
    expect(errors({ issuers: [{ name: 'mesh', type: 'x509' }], upstreams, routes: [route] })).toEqual([
      'issuers.0.type: x509 issuer "mesh" needs a listener that asks for client certificates (server.tls with client_ca, and client_auth optional or require), or certificates forwarded by a trusted proxy (server.forwarded_client_cert)',
      'routes.0.accept.0: accepting client_cert needs a listener that asks for client certificates (server.tls with client_ca) or certificates forwarded by a trusted proxy (server.forwarded_client_cert): without either this route never sees a certificate',
    ])
    const tls = { cert: pki.server.cert, key: pki.server.key, client_ca: pki.ca.cert, client_auth: 'none' }
    expect(errors({ server: { tls }, issuers: [{ name: 'mesh', type: 'x509' }], upstreams, routes: [route] })).toHaveLength(2)
  })

  it('refuses client_cert without an x509 issuer, and an issuer CA the listener does not trust', () => {
    const tls = { cert: pki.server.cert, key: pki.server.key, client_ca: pki.ca.cert }
    expect(errors({ server: { tls }, upstreams, routes: [route] })).toEqual(['routes.0.accept.0: accepting client_cert needs an issuer of type x509 (whose certificates it accepts)'])
    expect(errors({ server: { tls }, issuers: [{ name: 'mesh', type: 'x509', ca: pki.otherCa.cert }], upstreams, routes: [route] })).toEqual([
      'issuers.0.ca: "CN=Other CA, O=Bouncer tests" is not in server.tls.client_ca: the TLS handshake would refuse every certificate it signed',
    ])
    expect(errors({ server: { tls }, issuers: [{ name: 'mesh', type: 'x509', audiences: ['x'] }], upstreams, routes: [route] })).toEqual(['issuers.0.audiences: unknown key "audiences"'])
  })

  it('takes certificates forwarded by trusted proxies without a TLS listener, and refuses such a config that could not work or trusts anyone', () => {
    const forwarded = { header: 'Client-Cert', chain_header: 'Client-Cert-Chain' }
    const mesh = { name: 'mesh', type: 'x509', ca: pki.ca.cert }
    expect(errors({ server: { trusted_proxies: ['10.0.0.10/32'], forwarded_client_cert: forwarded }, issuers: [mesh], upstreams, routes: [route] })).toEqual([])
    expect(errors({ server: { trusted_proxies: ['10.0.0.10/32'], forwarded_client_cert: {} }, issuers: [mesh], upstreams, routes: [route] })).toEqual([])
    expect(errors({ server: { forwarded_client_cert: forwarded }, issuers: [mesh], upstreams, routes: [route] })).toEqual([
      'server.forwarded_client_cert: forwarded client certificates are believed only from server.trusted_proxies, and it lists none: name the load balancers that terminate TLS',
    ])
    expect(errors({ server: { trusted_proxies: ['10.0.0.10/32', '::/0'], forwarded_client_cert: forwarded }, issuers: [mesh], upstreams, routes: [route] })).toEqual([
      'server.trusted_proxies.1: with forwarded_client_cert, a trusted proxy of every address lets any client send a certificate it does not hold (certificates are public): list the load balancers alone',
    ])
    expect(errors({ server: { trusted_proxies: ['10.0.0.10/32'], forwarded_client_cert: forwarded }, issuers: [{ name: 'mesh', type: 'x509' }], upstreams, routes: [route] })).toEqual([
      'issuers.0.type: x509 issuer "mesh" has no ca, and the listener asks for no client certificates (server.tls.client_ca): name the CAs forwarded certificates must chain to',
    ])
    expect(errors({ server: { trusted_proxies: ['10.0.0.10/32'], forwarded_client_cert: forwarded }, upstreams, routes: [route] })).toEqual([
      'server.forwarded_client_cert: forwarded client certificates need an issuer of type x509, whose ca they must chain to',
      'routes.0.accept.0: accepting client_cert needs an issuer of type x509 (whose certificates it accepts)',
    ])
    expect(errors({ server: { trusted_proxies: ['10.0.0.10/32'], forwarded_client_cert: { header: 'Authorization', chain_header: 'Authorization' } }, issuers: [mesh], upstreams, routes: [route] })).toEqual([
      'server.forwarded_client_cert.header: Authorization is a header the gateway reads or writes for another purpose: name the field your proxy writes the certificate in (RFC 9440: Client-Cert, Client-Cert-Chain)',
      'server.forwarded_client_cert.chain_header: Authorization is a header the gateway reads or writes for another purpose: name the field your proxy writes the certificate in (RFC 9440: Client-Cert, Client-Cert-Chain)',
      'server.forwarded_client_cert.chain_header: chain_header must be another field than header: the certificate and its chain are two fields',
    ])
  })

  it("warns of an x509 issuer's ca that forwarded certificates are checked against as it warns of client_ca: no CA, or expired", () => {
    const warnings = (config: Record<string, unknown>) =>
      loadConfigText(stringify(config), join(pki.dir, 'check.yaml')).diagnostics.filter((d) => d.severity === 'warning').map((d) => `${d.path.join('.')}: ${d.message}`)
    const server = { trusted_proxies: ['10.0.0.10/32'], forwarded_client_cert: {} }
    // A client's own certificate pinned as the issuer's ca: it is accepted itself, and signs no one.
    expect(warnings({ server, issuers: [{ name: 'mesh', type: 'x509', ca: certs.expired.cert }], upstreams, routes: [route] })).toEqual([
      `issuers.0.ca: "CN=expired" in ${certs.expired.cert} is not a CA certificate (basicConstraints CA:TRUE): only a client presenting that very certificate would be accepted`,
      `issuers.0.ca: "CN=expired" in ${certs.expired.cert} expired at 2020-01-02T00:00:00.000Z: every client certificate it signed is refused`,
    ])
    expect(warnings({ server, issuers: [{ name: 'mesh', type: 'x509', ca: pki.ca.cert }], upstreams, routes: [route] })).toEqual([])
  })
})
