// Client certificates at their edges, each case a fault a probe found (what it saw is the comment
// above its describe block). One test PKI for the file; each case starts the in-process gateway it
// needs (test/helpers/certs.ts's clientCertGateway: issuer `mesh`, role `etl`, route `data`) with an
// upstream of its own, so what reached an upstream is that case's alone.
import { X509Certificate } from 'node:crypto'
import { execFileSync } from 'node:child_process'
import { once } from 'node:events'
import { readFileSync, writeFileSync } from 'node:fs'
import type { AddressInfo, Socket } from 'node:net'
import { join } from 'node:path'
import { connect, createServer, type TLSSocket } from 'node:tls'
import { Agent, request } from 'undici'
import { stringify } from 'yaml'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { loadConfigText } from '../../src/config/index.ts'
import { GatewayError } from '../../src/errors/index.ts'
import { clientCertVerifier } from '../../src/identity/x509.ts'
import { clientCertConfig, clientCertGateway, clientCertTls, createPki, opensslDate, requestWithCertificate, type Issued, type TestCa, type TestPki } from '../helpers/certs.ts'
import { startTestGateway, type TestGateway } from '../helpers/gateway.ts'
import { startUpstream, type Received, type TestUpstream } from '../helpers/upstream.ts'
import { waitFor } from '../helpers/wait.ts'

const DAY = 86_400_000
let pki: TestPki

beforeAll(() => {
  pki = createPki()
})

afterAll(() => pki?.close())

/** A file in the test PKI's directory (each case's names are its own). */
const at = (name: string) => join(pki.dir, name)

function openssl(args: string[]): void {
  execFileSync('openssl', args, { cwd: pki.dir, stdio: ['ignore', 'ignore', 'pipe'] })
}

/** PEM files as one bundle, written to `name` in the PKI's directory. */
function bundle(name: string, ...pemFiles: string[]): string {
  writeFileSync(at(name), pemFiles.map((file) => readFileSync(file, 'utf8')).join(''))
  return at(name)
}

/** A gateway of clientCertGateway and its upstream, started before a describe block's cases and closed after them. */
function gatewayPerBlock(options: () => Parameters<typeof clientCertGateway>[2]): { upstream: TestUpstream; gateway: TestGateway } {
  const started = {} as { upstream: TestUpstream; gateway: TestGateway }
  beforeAll(async () => {
    started.upstream = await startUpstream()
    started.gateway = await clientCertGateway(pki, started.upstream.url, options())
  })
  afterAll(async () => {
    await started.gateway?.close()
    await started.upstream?.close()
  })
  return started
}

/** GET /data/x on a connection of its own presenting `cert`: its status and JSON body. */
async function get(gateway: TestGateway, cert: Issued): Promise<{ status: number; body: Record<string, unknown> }> {
  const res = await requestWithCertificate(`${gateway.url}/data/x`, pki, cert)
  return { status: res.status, body: res.json() }
}

// A client certificate's subject is its URI SAN (a SPIFFE ID), else its CN. A CN is free text that a
// CA copies from the request, so a probe got a certificate with no SAN and CN=spiffe://prod/ns/etl/sa/admin
// taken for that SVID's workload: the same sub, the role its glob grants, the same assertion and audit
// subject. A CN written as a URI is refused now (401 client_cert_required, saying why); a URI SAN and a
// plain CN are taken as before.
describe('a CN that looks like a URI', () => {
  const on = gatewayPerBlock(() => ({ issuerCa: pki.ca.cert, subjects: ['spiffe://prod/ns/etl/*', 'batch-*'] }))

  it('is refused: a SPIFFE ID counts only as a URI SAN', async () => {
    // openssl -subj takes `/` as the separator of attributes: escaped inside the value.
    const cnUri = pki.ca.issue('cn-uri', { usage: 'client', subject: '/CN=spiffe:\\/\\/prod\\/ns\\/etl\\/sa\\/admin' })
    const answer = await get(on.gateway, cnUri)
    expect(answer.status, JSON.stringify(answer.body)).toBe(401)
    expect(answer.body).toMatchObject({ code: 'client_cert_required', detail: expect.stringMatching(/as a URI in its CN/) })
    expect(on.upstream.received).toHaveLength(0)
  })

  it('leaves a URI SAN and a plain CN as they were', async () => {
    expect((await get(on.gateway, pki.ca.issue('svid', { usage: 'client', san: ['URI:spiffe://prod/ns/etl/sa/admin'] }))).status).toBe(200)
    expect((await get(on.gateway, pki.ca.issue('batch', { usage: 'client', subject: '/CN=batch-nightly:eu/O=Example' }))).status).toBe(200)
  })
})

// A client certificate's URI SAN has no length of its own. A probe presented one of 20,000
// characters: it was taken as the subject, and went upstream in X-Bouncer-Assertion, a header past
// what the upstream takes — the client got the upstream's 431, recorded as an allow. A workload
// identity is bounded now by the SPIFFE ID's own bound (2048 bytes): a longer name is refused,
// 401 client_cert_required, before anything is sent; one of 2048 bytes is served whole.
describe('a client certificate naming a very long workload', () => {
  const PREFIX = 'spiffe://prod/ns/etl/sa/'
  const on = gatewayPerBlock(() => ({ subjects: [`${PREFIX}*`], identityAssertion: true }))
  const named = (bytes: number) => pki.ca.issue(`long-${bytes}`, { usage: 'client', san: [`URI:${PREFIX}${'a'.repeat(bytes - PREFIX.length)}`] })

  it('is refused past 2048 bytes, and nothing goes upstream', async () => {
    const answer = await get(on.gateway, named(20_000))
    expect(answer).toMatchObject({ status: 401, body: { code: 'client_cert_required', detail: expect.stringMatching(/of 20000 bytes: a workload identity is at most 2048/) } })
    expect(on.upstream.received).toHaveLength(0)
  })

  it('is served whole at 2048 bytes', async () => {
    const answer = await get(on.gateway, named(2048))
    expect(answer.status).toBe(200)
    const assertion = (answer.body.headers as Record<string, string>)['x-bouncer-assertion'] as string
    const claims = JSON.parse(Buffer.from(assertion.split('.')[1] as string, 'base64url').toString('utf8')) as { sub: string }
    expect(claims.sub).toHaveLength(2048)
  })
})

// RFC 9110 §11.6.1: a 401 names a scheme the client may answer with. On a route that takes a client
// certificate or a bearer token (accept: [client_cert, bearer]), a probe found a request with
// neither answered 401 client_cert_required with no WWW-Authenticate at all, though a token would
// be taken — as a session's refusal was before the same fix for sessions. It carries `Bearer` now.
// A certificate presented decides (a token beside it is not taken), so its refusal names none, and
// a route that takes certificates only has no HTTP challenge to name.
describe('401 client_cert_required and WWW-Authenticate', () => {
  const on = gatewayPerBlock(() => ({
    issuerCa: pki.ca.cert,
    subjects: ['spiffe://prod/*'],
    issuers: [{ name: 'corp', issuer: 'https://sso.example.com/', audiences: ['api://bouncer'], jwks_uri: 'http://127.0.0.1:1/keys' }],
    routes: [
      { id: 'either', path: '/either/*', upstream: 'api', accept: ['client_cert', 'bearer'] },
      { id: 'certs', path: '/certs/*', upstream: 'api', accept: ['client_cert'] },
    ],
  }))

  async function refusal(path: string, cert: Issued | null): Promise<{ status: number; code: unknown; challenge: unknown }> {
    const res = await requestWithCertificate(`${on.gateway.url}${path}`, pki, cert)
    return { status: res.status, code: res.json().code, challenge: res.headers['www-authenticate'] ?? null }
  }

  it('names Bearer where the route also takes a bearer token and the connection presented no certificate', async () => {
    expect(await refusal('/either/x', null)).toEqual({ status: 401, code: 'client_cert_required', challenge: 'Bearer' })
  })

  it('names none where a certificate was presented, or the route takes certificates only', async () => {
    const expired = pki.ca.issue('expired', { usage: 'client', san: ['URI:spiffe://prod/old'], notBefore: '20200101000000Z', notAfter: '20200102000000Z' })
    expect(await refusal('/either/x', expired)).toEqual({ status: 401, code: 'client_cert_required', challenge: null })
    expect(await refusal('/certs/x', null)).toEqual({ status: 401, code: 'client_cert_required', challenge: null })
  })
})

// OpenSSL's verdict on a client certificate is of its whole chain. A probe presented a certificate
// valid for another month, signed by a CA whose own certificate had expired: the 401 said
// "The client certificate "CN=under-expired" expired at <a date a month ahead>", sending its
// operator to renew a certificate that was fine. The detail now says it is the CA's certificate
// that expired, and names it; a leaf that expired itself is still told so. And `bouncer check`,
// which warns of an expired server certificate, said nothing of the expired client CA: it warns now.
describe('a CA that expired', () => {
  let underExpiredCa: Issued
  let clientCa: string

  /** A self-signed CA that expired in 2020 (`openssl ca -selfsign` sets its dates), and a leaf it signs today for 30 days. */
  function expiredCaAndLeaf(): { ca: string; leaf: Issued } {
    writeFileSync(at('old-ca.ext'), 'basicConstraints=critical,CA:TRUE\nkeyUsage=critical,keyCertSign,cRLSign\n')
    openssl(['req', '-new', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', at('old-ca.key'), '-out', at('old-ca.csr'), '-subj', '/CN=Old CA/O=Bouncer tests'])
    openssl(['ca', '-selfsign', '-batch', '-notext', '-config', join(pki.dir, 'Test CA', 'ca.cnf'), '-keyfile', at('old-ca.key'), '-in', at('old-ca.csr'), '-out', at('old-ca.crt'),
      '-startdate', '20200101000000Z', '-enddate', '20200102000000Z', '-extfile', at('old-ca.ext')])
    writeFileSync(at('under.ext'), 'basicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=clientAuth\nsubjectAltName=URI:spiffe://prod/ns/etl/sa/under\n')
    openssl(['req', '-new', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', at('under.key'), '-out', at('under.csr'), '-subj', '/CN=under-expired'])
    openssl(['x509', '-req', '-in', at('under.csr'), '-CA', at('old-ca.crt'), '-CAkey', at('old-ca.key'), '-set_serial', '77', '-days', '30', '-out', at('under.crt'), '-extfile', at('under.ext')])
    return { ca: at('old-ca.crt'), leaf: { cert: at('under.crt'), key: at('under.key') } }
  }

  const on = gatewayPerBlock(() => {
    const made = expiredCaAndLeaf()
    underExpiredCa = made.leaf
    clientCa = bundle('client-ca-with-old.pem', pki.ca.cert, made.ca)
    return { clientCa, subjects: ['spiffe://prod/*'] }
  })

  async function detailFor(cert: Issued): Promise<unknown> {
    const res = await requestWithCertificate(`${on.gateway.url}/data/x`, pki, cert)
    expect(res.status).toBe(401)
    return res.json().detail
  }

  describe('a client certificate refused for its CA\'s dates', () => {
    it('says the CA\'s certificate expired, not the client\'s', async () => {
      expect(await detailFor(underExpiredCa)).toBe('The client certificate "CN=under-expired" chains to a CA certificate that has expired (its issuer: "CN=Old CA, O=Bouncer tests").')
    })

    it('still says when the client\'s own certificate expired', async () => {
      const expired = pki.ca.issue('expired', { usage: 'client', san: ['URI:spiffe://prod/old'], notBefore: '20200101000000Z', notAfter: '20200102000000Z' })
      expect(await detailFor(expired)).toBe('The client certificate "CN=expired" expired at 2020-01-02T00:00:00.000Z.')
    })
  })

  describe('bouncer check', () => {
    it('warns of an expired CA in client_ca, as of an expired server certificate', () => {
      const config = { server: { tls: { cert: pki.server.cert, key: pki.server.key, client_ca: clientCa } }, upstreams: [{ name: 'api', url: 'http://127.0.0.1:1' }], routes: [{ id: 'r', path: '/r', upstream: 'api' }] }
      const warnings = loadConfigText(stringify(config), join(pki.dir, 'check.yaml')).diagnostics.filter((d) => d.severity === 'warning').map((d) => `${d.path.join('.')}: ${d.message}`)
      expect(warnings).toContain(`server.tls.client_ca: "CN=Old CA, O=Bouncer tests" in ${clientCa} expired at 2020-01-02T00:00:00.000Z: every client certificate it signed is refused`)
    })
  })
})

// What a connection's client certificate proves is worked out once, and each request on it checks
// the clock again: a connection (or a TLS session resumed from it) may outlive the certificate. It
// checked only the leaf's end: a probe's CA certificate that expired while a connection was open left
// the leaf, valid for weeks more, authenticating on it. The chain's CAs are checked per request too.
// Real TLS on loopback (node:tls), the verifier's clock moved past the CA's end.
describe('a CA that expires while a connection is open', () => {
  let shortCa: string
  let leaf: Issued

  /** A CA whose own certificate ends in two days, and a workload certificate it signs for thirty. */
  beforeAll(() => {
    writeFileSync(at('short-ca.ext'), 'basicConstraints=critical,CA:TRUE\nkeyUsage=critical,keyCertSign,cRLSign\n')
    openssl(['req', '-new', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', at('short-ca.key'), '-out', at('short-ca.csr'), '-subj', '/CN=Short CA/O=Bouncer tests'])
    openssl(['ca', '-selfsign', '-batch', '-notext', '-config', join(pki.dir, 'Test CA', 'ca.cnf'), '-keyfile', at('short-ca.key'), '-in', at('short-ca.csr'), '-out', at('short-ca.crt'),
      '-startdate', opensslDate(new Date(Date.now() - DAY)), '-enddate', opensslDate(new Date(Date.now() + 2 * DAY)), '-extfile', at('short-ca.ext')])
    writeFileSync(at('w.ext'), 'basicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=clientAuth\nsubjectAltName=URI:spiffe://prod/ns/etl/sa/loader\n')
    openssl(['req', '-new', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', at('w.key'), '-out', at('w.csr'), '-subj', '/CN=loader'])
    openssl(['x509', '-req', '-in', at('w.csr'), '-CA', at('short-ca.crt'), '-CAkey', at('short-ca.key'), '-set_serial', '88', '-days', '30', '-out', at('w.crt'), '-extfile', at('w.ext')])
    shortCa = at('short-ca.crt')
    leaf = { cert: at('w.crt'), key: at('w.key') }
  })

  it('stops the connection\'s certificate from authenticating, though the leaf is still valid', async () => {
    const server = createServer({ cert: readFileSync(pki.server.cert), key: readFileSync(pki.server.key), ca: readFileSync(shortCa), requestCert: true, rejectUnauthorized: false })
    server.listen(0, '127.0.0.1')
    await once(server, 'listening')
    const accepted = once(server, 'secureConnection') as Promise<[TLSSocket]>
    const client = connect({ port: (server.address() as AddressInfo).port, host: '127.0.0.1', servername: 'localhost', ca: readFileSync(pki.ca.cert), cert: readFileSync(leaf.cert), key: readFileSync(leaf.key) })
    try {
      const [socket] = await accepted
      let clock = Date.now()
      const verifier = clientCertVerifier([{ name: 'mesh', cas: [new X509Certificate(readFileSync(shortCa))] }], () => clock)
      const input = { headers: null, rawHeaders: [], query: '', socket: socket as unknown as Socket }
      expect((await verifier.authenticate(input)).identity).toMatchObject({ issuerName: 'mesh', sub: 'spiffe://prod/ns/etl/sa/loader' })
      clock = Date.now() + 3 * DAY // the CA's end is past; the leaf's is weeks away
      const refused = await verifier.authenticate(input).then(() => null, (err: unknown) => err)
      expect(refused).toBeInstanceOf(GatewayError)
      expect(refused).toMatchObject({ code: 'client_cert_required', detail: expect.stringMatching(/^The client certificate chains to a CA certificate that expired at /) })
    } finally {
      client.destroy()
      server.close()
    }
  })
})

// The TLS files are read again when they change on disk, as on SIGHUP — server.tls's cert, key and
// client_ca were watched, but not the x509 issuers' `ca` files, read by the same reload. A probe took
// a CA out of an issuer's ca file (cutting that CA's workloads off) and its certificates kept
// authenticating as the issuer's until someone sent SIGHUP. The issuers' ca files are watched too now.
describe('an x509 issuer\'s ca file changed on disk', () => {
  let partnerCa: TestCa
  let meshFile: string
  const on = gatewayPerBlock(() => {
    partnerCa = pki.newCa('Partner CA')
    meshFile = bundle('mesh-ca.pem', pki.ca.cert)
    return { clientCa: bundle('client-ca-with-partner.pem', pki.ca.cert, partnerCa.cert), issuerCa: meshFile, subjects: ['spiffe://*'] }
  })

  it('is read again, as on SIGHUP: a CA taken out of it no longer vouches', async () => {
    const loader = pki.ca.issue('loader', { usage: 'client', san: ['URI:spiffe://prod/ns/etl/sa/loader'] })
    expect((await get(on.gateway, loader)).status).toBe(200)
    const reloads = () => on.gateway.logs.filter((line) => line.includes('"config reloaded"')).length
    const before = reloads()
    writeFileSync(meshFile, readFileSync(partnerCa.cert)) // mesh now vouches for the partner's CA only
    await waitFor(() => reloads() > before, 'a reload after the issuer\'s ca file changed', 10_000)
    expect(await get(on.gateway, loader)).toMatchObject({ status: 401, body: { code: 'client_cert_required', detail: expect.stringMatching(/no x509 issuer's ca names/) } })
    expect((await get(on.gateway, partnerCa.issue('partner', { usage: 'client', san: ['URI:spiffe://partner/x'] }))).status).toBe(200)
  })
})

// server.tls.client_ca names the CAs client certificates must chain to. OpenSSL checks a chain up
// to a self-signed root of that list (Node's TLS server offers no partial chains), so a probe that
// listed an issuing CA alone got every certificate it signed refused — 401 client_cert_required,
// "signed by another CA ("CN=Mesh Intermediate"), not one of server.tls.client_ca", naming the very
// CA listed — while `bouncer check` said ok. It is a check error now, saying to add the root (a
// cross-signed copy of a root listed beside the root itself is that root, and passes).
describe('client_ca without the root of its CA', () => {
  let intermediate: Issued
  let leaf: Issued
  let upstream: TestUpstream | undefined
  let gateway: TestGateway | undefined

  /** A CA signed by the test root, and a workload certificate it signs (sent with it, as a chain). */
  beforeAll(() => {
    writeFileSync(at('int.ext'), 'basicConstraints=critical,CA:TRUE,pathlen:0\nkeyUsage=critical,keyCertSign,cRLSign\n')
    openssl(['req', '-new', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', at('int.key'), '-out', at('int.csr'), '-subj', '/CN=Mesh Intermediate/O=Bouncer tests'])
    openssl(['x509', '-req', '-in', at('int.csr'), '-CA', pki.ca.cert, '-CAkey', pki.ca.key, '-set_serial', '7001', '-days', '30', '-out', at('int.crt'), '-extfile', at('int.ext')])
    writeFileSync(at('leaf.ext'), 'basicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=clientAuth\nsubjectAltName=URI:spiffe://prod/ns/etl/sa/loader\n')
    openssl(['req', '-new', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', at('leaf.key'), '-out', at('leaf.csr'), '-subj', '/CN=loader'])
    openssl(['x509', '-req', '-in', at('leaf.csr'), '-CA', at('int.crt'), '-CAkey', at('int.key'), '-set_serial', '7002', '-days', '7', '-out', at('leaf.crt'), '-extfile', at('leaf.ext')])
    intermediate = { cert: at('int.crt'), key: at('int.key') }
    leaf = { cert: bundle('leaf-chain.crt', at('leaf.crt'), at('int.crt')), key: at('leaf.key') }
  })

  afterAll(async () => {
    await gateway?.close()
    await upstream?.close()
  })

  const config = (clientCa: string) => clientCertConfig(upstream?.url ?? 'http://127.0.0.1:1', { issuerCa: intermediate.cert, server: { tls: clientCertTls(pki, clientCa) } })
  const errors = (clientCa: string) =>
    loadConfigText(stringify(config(clientCa)), join(pki.dir, 'check.yaml')).diagnostics.filter((d) => d.severity === 'error').map((d) => `${d.path.join('.')}: ${d.message}`)

  it('is a check error naming the CA and the root it needs', () => {
    expect(errors(intermediate.cert)).toEqual([
      `server.tls.client_ca: "CN=Mesh Intermediate, O=Bouncer tests" in ${intermediate.cert} is not a root, and the CA that signed it ("CN=Test CA, O=Bouncer tests") is not in client_ca: the TLS handshake checks a client certificate's chain up to a self-signed root of client_ca, so it would refuse every certificate this CA signed. Add that root to client_ca`,
    ])
  })

  it('takes a cross-signed copy of a root listed beside the root itself (the same CA to OpenSSL)', () => {
    // The test root's own key and name, signed by another CA: a bundle from a CA in transition.
    writeFileSync(at('cross.ext'), 'basicConstraints=critical,CA:TRUE\nkeyUsage=critical,keyCertSign,cRLSign\n')
    openssl(['req', '-new', '-key', pki.ca.key, '-out', at('cross.csr'), '-subj', '/CN=Test CA/O=Bouncer tests'])
    openssl(['x509', '-req', '-in', at('cross.csr'), '-CA', pki.otherCa.cert, '-CAkey', pki.otherCa.key, '-set_serial', '7003', '-days', '30', '-out', at('cross.crt'), '-extfile', at('cross.ext')])
    expect(errors(bundle('root-and-cross.pem', pki.ca.cert, at('cross.crt'), intermediate.cert))).toEqual([])
  })

  it('with its root, passes check, and the CA\'s workloads are served as its x509 issuer\'s', async () => {
    const both = bundle('root-and-int.pem', pki.ca.cert, intermediate.cert)
    expect(errors(both)).toEqual([])
    upstream = await startUpstream()
    gateway = await startTestGateway(config(both))
    const res = await requestWithCertificate(`${gateway.url}/data/x`, pki, leaf)
    expect(res.status, res.text).toBe(200)
  })
})

// RFC 9440's Client-Cert and Client-Cert-Chain carry, from the proxy that terminated TLS, the
// certificate it checked; an origin believes them from that proxy alone (§3). With client
// certificates the gateway is that proxy, yet a probe found a client's own `Client-Cert` (beside a
// certificate of its own, or none) reaching the upstream as sent: an upstream reading it took the
// client's word for a certificate the gateway never saw. They are removed now, with their
// look-alikes, like X-Forwarded-Client-Cert (in the X-Forwarded-* family) already was.
describe('client certificate headers from the client', () => {
  let loader: Issued
  const on = gatewayPerBlock(() => {
    loader = pki.ca.issue('loader', { usage: 'client', san: ['URI:spiffe://prod/ns/etl/sa/loader'] })
    return { issuerCa: pki.ca.cert, open: true, server: { trusted_proxies: ['127.0.0.1/32'] } }
  })

  /** A forged certificate header of each spelling a proxy or framework reads. */
  const FORGED = {
    'client-cert': ':MIIBforged:',
    'client-cert-chain': ':MIIBforgedchain:',
    client_cert: ':MIIBlookalike:',
    'x-forwarded-client-cert': 'By=spiffe://prod/ns/gateway;URI=spiffe://prod/ns/admin/sa/root',
  }

  async function sent(path: string, cert: Issued | null): Promise<Received> {
    const agent = new Agent({ connect: { ca: readFileSync(pki.ca.cert), servername: 'localhost', ...(cert ? { cert: readFileSync(cert.cert), key: readFileSync(cert.key) } : {}) } })
    try {
      const res = await request(`${on.gateway.url}${path}`, { dispatcher: agent, headers: FORGED })
      const body = (await res.body.json()) as Received
      expect(res.statusCode, JSON.stringify(body)).toBe(200)
      return body
    } finally {
      await agent.close()
    }
  }

  for (const [what, path, cert] of [['beside a certificate', '/data/x', 'loader'], ['with no certificate, on a public route', '/open', null]] as const) {
    it(`never reach the upstream (${what})`, async () => {
      const received = await sent(path, cert === null ? null : loader)
      const names = Object.keys(received.headers)
      expect(names.filter((name) => /client.cert/.test(name))).toEqual([])
    })
  }
})
