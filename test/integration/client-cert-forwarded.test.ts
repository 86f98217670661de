// Client certificates behind a load balancer that terminates TLS (server.forwarded_client_cert,
// RFC 9440): real HAProxy asks for the client's certificate and hands it on in Client-Cert and
// Client-Cert-Chain to `bouncer serve` (two workers), which checks the chain against the x509
// issuer's CA as a handshake would and takes the same identity, audit record and assertion. A second
// HAProxy frontend checks nothing (crt-ignore-err), so that what the gateway refuses on its own is
// seen: another CA's certificate, an expired one (its record names whose it was). A peer outside
// trusted_proxies cannot send the fields, and the upstream never sees them. And the chain check a
// forwarded certificate gets accepts and refuses what a TLS handshake does (key usages, CAs, depth).
import { X509Certificate } from 'node:crypto'
import { once } from 'node:events'
import { execFileSync, spawn, type ChildProcess } from 'node:child_process'
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { connect, type AddressInfo, type Socket } from 'node:net'
import { tmpdir } from 'node:os'
import { dirname, join } from 'node:path'
import { connect as tlsConnect, createServer as createTlsServer } from 'node:tls'
import { Agent, request } from 'undici'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { verifyCertificatePath } from '../../src/identity/certificate-path.ts'
import { clientCertVerifier } from '../../src/identity/x509.ts'
import { clientCertConfig, createPki, type Issued, type TestCa, type TestPki } from '../helpers/certs.ts'
import { serveConfig, type ServeProcess } from '../helpers/cli.ts'
import { startTestGateway, type TestGateway } from '../helpers/gateway.ts'
import { waitForAuditRecord } from '../helpers/audit.ts'
import { closedPort } from '../helpers/faults.ts'
import { startUpstream, type TestUpstream } from '../helpers/upstream.ts'
import { waitFor } from '../helpers/wait.ts'

let pki: TestPki
let meshCa: TestCa
let upstream: TestUpstream
let gateway: ServeProcess & { dir: string }
let haproxy: ChildProcess
let haproxyErr = ''
let strictUrl: string
let carelessUrl: string
let certs: Record<'loader' | 'expired' | 'otherCa', Issued>

/** A client's certificate file as TLS sends it: the leaf, then the intermediate that signed it. */
function withIntermediate(issued: Issued, ca: TestCa): Issued {
  const cert = `${issued.cert}.chain.pem`
  writeFileSync(cert, readFileSync(issued.cert, 'latin1') + readFileSync(ca.cert, 'latin1'))
  return { cert, key: issued.key }
}

/** A PEM file's first certificate as an RFC 9440 field value. */
function field(pemFile: string): string {
  return `:${new X509Certificate(readFileSync(pemFile)).raw.toString('base64')}:`
}

function haproxyConfig(dir: string, strictPort: number, carelessPort: number, gatewayPort: number): string {
  const pem = join(dir, 'haproxy.pem')
  writeFileSync(pem, readFileSync(pki.server.cert, 'latin1') + readFileSync(pki.server.key, 'latin1'))
  // The test CA's directory name has a space, which HAProxy's config would split at.
  const ca = join(dir, 'clients-ca.pem')
  writeFileSync(ca, readFileSync(pki.ca.cert))
  const forwardCertificate = [
    '  http-request del-header Client-Cert',
    '  http-request del-header Client-Cert-Chain',
    '  http-request set-header Client-Cert :%[ssl_c_der,base64]: if { ssl_c_used }',
    '  http-request set-header Client-Cert-Chain :%[ssl_c_chain_der,base64]: if { ssl_c_used } { ssl_c_chain_der -m found }',
    '  default_backend gateway',
  ]
  return [
    'defaults',
    '  mode http',
    '  timeout connect 5s',
    '  timeout client 10s',
    '  timeout server 10s',
    'frontend strict',
    `  bind 127.0.0.1:${strictPort} ssl crt ${pem} verify optional ca-file ${ca}`,
    ...forwardCertificate,
    'frontend careless',
    `  bind 127.0.0.1:${carelessPort} ssl crt ${pem} verify optional ca-file ${ca} crt-ignore-err all ca-ignore-err all`,
    ...forwardCertificate,
    'backend gateway',
    `  server bouncer 127.0.0.1:${gatewayPort}`,
    '',
  ].join('\n')
}

function listening(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect(port, '127.0.0.1', () => {
      socket.destroy()
      resolve(true)
    })
    socket.on('error', () => resolve(false))
  })
}

beforeAll(async () => {
  pki = createPki()
  meshCa = pki.newCa('Mesh Intermediate', pki.ca)
  certs = {
    loader: withIntermediate(meshCa.issue('loader', { usage: 'client', san: ['URI:spiffe://prod/ns/etl/sa/loader'] }), meshCa),
    expired: withIntermediate(meshCa.issue('expired', { usage: 'client', san: ['URI:spiffe://prod/ns/etl/sa/old'], notBefore: '20200101000000Z', notAfter: '20200102000000Z' }), meshCa),
    otherCa: pki.otherCa.issue('impostor', { usage: 'client', san: ['URI:spiffe://prod/ns/etl/sa/loader'] }),
  }
  upstream = await startUpstream()
  gateway = await serveConfig((dir) => ({
    ...clientCertConfig(upstream.url, {
      issuerCa: pki.ca.cert,
      identityAssertion: true,
      open: true,
      server: { listen: '127.0.0.1:0', workers: 2, trusted_proxies: ['127.0.0.1/32'], forwarded_client_cert: { header: 'Client-Cert', chain_header: 'Client-Cert-Chain' } },
    }),
    audit: { sinks: [{ type: 'sqlite', path: join(dir, 'audit.db') }], flush_interval: '20ms' },
  }), { startTimeout: 90_000 }) // two workers on a busy machine start slowly (as helpers/workers.ts allows)
  const [strictPort, carelessPort] = [await closedPort(), await closedPort()]
  const file = join(gateway.dir, 'haproxy.cfg')
  writeFileSync(file, haproxyConfig(gateway.dir, strictPort, carelessPort, Number(new URL(gateway.url).port)))
  haproxy = spawn('/usr/sbin/haproxy', ['-db', '-f', file], { stdio: ['ignore', 'ignore', 'pipe'] })
  haproxy.stderr?.on('data', (d: Buffer) => (haproxyErr += d.toString()))
  await waitFor(async () => {
    if (haproxy.exitCode !== null) throw new Error(`haproxy exited: ${haproxyErr}`)
    return (await listening(strictPort)) && (await listening(carelessPort))
  }, `HAProxy listening (${haproxyErr})`)
  strictUrl = `https://127.0.0.1:${strictPort}`
  carelessUrl = `https://127.0.0.1:${carelessPort}`
}, 150_000)

afterAll(async () => {
  if (haproxy && haproxy.exitCode === null) {
    haproxy.kill('SIGTERM')
    await once(haproxy, 'exit')
  }
  await gateway?.stop()
  await upstream?.close()
  pki?.close()
})

interface Answer {
  status: number
  requestId: string
  body: Record<string, unknown>
}

function answerOf(status: number, headers: Record<string, string | string[] | undefined>, text: string): Answer {
  return { status, requestId: String(headers['x-request-id']), body: text === '' ? {} : (JSON.parse(text) as Record<string, unknown>) }
}

/** One request through HAProxy, presenting `cert` (or none) in its TLS handshake. */
async function throughProxy(base: string, path: string, cert: Issued | null): Promise<Answer> {
  const agent = new Agent({ connect: { ca: readFileSync(pki.ca.cert), servername: 'localhost', ...(cert ? { cert: readFileSync(cert.cert), key: readFileSync(cert.key) } : {}) } })
  try {
    const res = await request(`${base}${path}`, { dispatcher: agent, headers: { 'client-cert': ':Zm9yZ2Vk:' } })
    return answerOf(res.statusCode, res.headers, await res.body.text())
  } finally {
    await agent.close()
  }
}

/** One request straight to the gateway, from `localAddress` (127.0.0.1 is the trusted proxy's address; 127.0.0.2 is not). */
async function direct(path: string, headers: Record<string, string>, localAddress: string): Promise<Answer> {
  const agent = new Agent({ localAddress })
  try {
    const res = await request(`${gateway.url}${path}`, { dispatcher: agent, headers })
    return answerOf(res.statusCode, res.headers, await res.body.text())
  } finally {
    await agent.close()
  }
}

function assertionClaims(body: Record<string, unknown>): Record<string, unknown> {
  const token = (body.headers as Record<string, string>)['x-bouncer-assertion'] as string
  return JSON.parse(Buffer.from(token.split('.')[1] as string, 'base64url').toString('utf8')) as Record<string, unknown>
}

function certificateFields(body: Record<string, unknown>): string[] {
  return Object.keys(body.headers as Record<string, string>).filter((name) => /client.cert/i.test(name))
}

describe('client certificates forwarded by HAProxy (RFC 9440)', () => {
  it('become the identity a handshake gives: trust rules, assertion and audit record alike; the fields never reach the upstream', async () => {
    const answer = await throughProxy(strictUrl, '/data/daily', certs.loader)
    expect(answer.status, JSON.stringify(answer.body)).toBe(200)
    expect(assertionClaims(answer.body)).toMatchObject({ sub: 'spiffe://prod/ns/etl/sa/loader', roles: ['etl'], idp: 'CN=Test CA, O=Bouncer tests' })
    expect(certificateFields(answer.body)).toEqual([])
    const record = await waitForAuditRecord(join(gateway.dir, 'audit.db'), answer.requestId)
    expect(record).toMatchObject({ status: 200, credential: 'client_cert', subject: 'spiffe://prod/ns/etl/sa/loader', issuer: 'CN=Test CA, O=Bouncer tests', client_id: null, roles: ['etl'] })
  })

  it('answers a client without a certificate 401 client_cert_required (its own Client-Cert was dropped by the proxy)', async () => {
    const answer = await throughProxy(strictUrl, '/data/daily', null)
    expect(answer.status).toBe(401)
    expect(answer.body).toMatchObject({ code: 'client_cert_required', detail: expect.stringContaining('from a trusted proxy (server.trusted_proxies) without Client-Cert') })
  })

  it("refuses what a careless proxy let through: another CA's certificate, and an expired one, whose record names it", async () => {
    const stranger = await throughProxy(carelessUrl, '/data/daily', certs.otherCa)
    expect(stranger.status).toBe(401)
    expect(stranger.body).toMatchObject({ code: 'client_cert_required', detail: 'The client certificate "CN=impostor" is signed by another CA ("CN=Other CA, O=Bouncer tests"), not one of the x509 issuers\' ca.' })
    const strangerRecord = await waitForAuditRecord(join(gateway.dir, 'audit.db'), stranger.requestId)
    expect(strangerRecord).toMatchObject({ status: 401, code: 'client_cert_required', subject: null, detail: expect.stringContaining('signed by another CA') })

    const expired = await throughProxy(carelessUrl, '/data/daily', certs.expired)
    expect(expired.status).toBe(401)
    expect(expired.body).toMatchObject({ code: 'client_cert_required', detail: 'The client certificate "CN=expired" expired at 2020-01-02T00:00:00.000Z.' })
    const expiredRecord = await waitForAuditRecord(join(gateway.dir, 'audit.db'), expired.requestId)
    expect(expiredRecord).toMatchObject({ status: 401, credential: 'client_cert', subject: 'spiffe://prod/ns/etl/sa/old', issuer: 'CN=Test CA, O=Bouncer tests', detail: expect.stringContaining('expired at') })
  })

  it('believes the fields from trusted_proxies alone: another peer sending a genuine certificate gets nowhere, and the upstream never sees them', async () => {
    const stolen = field(certs.loader.cert)
    const refused = await direct('/data/daily', { 'client-cert': stolen }, '127.0.0.2')
    expect(refused.status).toBe(401)
    // Said as what it is: the usual slip is a load balancer left out of trusted_proxies.
    expect(refused.body).toMatchObject({ code: 'client_cert_required', detail: 'This route needs a client certificate: Client-Cert is believed only from server.trusted_proxies, and this peer (127.0.0.2) is not one, so the request carries none.' })
    const open = await direct('/open', { 'client-cert': stolen, 'client-cert-chain': stolen }, '127.0.0.2')
    expect(open.status).toBe(200)
    expect(certificateFields(open.body)).toEqual([])
  })

  it('answers a malformed, huge or forged field from the trusted proxy 401 with its reason, in the answer and the record', async () => {
    const forged = Buffer.from(new X509Certificate(readFileSync(certs.loader.cert)).raw)
    forged[forged.length - 3] = (forged[forged.length - 3] as number) ^ 0x01
    const cases: Array<[Record<string, string>, RegExp]> = [
      [{ 'client-cert': readFileSync(certs.loader.cert, 'latin1').replace(/\n/g, ' ') }, /holds a PEM certificate/],
      [{ 'client-cert': `:${'QUJD'.repeat(3000)}:` }, /Client-Cert is not a DER X\.509 certificate/],
      [{ 'client-cert': `:${forged.toString('base64')}:`, 'client-cert-chain': field(meshCa.cert) }, /is signed by another CA/],
    ]
    for (const [headers, detail] of cases) {
      const answer = await direct('/data/daily', headers, '127.0.0.1')
      expect(answer.status, JSON.stringify(answer.body)).toBe(401)
      expect(answer.body).toMatchObject({ code: 'client_cert_required', detail: expect.stringMatching(detail) })
      const record = await waitForAuditRecord(join(gateway.dir, 'audit.db'), answer.requestId)
      expect(record).toMatchObject({ status: 401, code: 'client_cert_required', detail: expect.stringMatching(detail) })
    }
  })
})

describe('forwarded client certificates under field names of the config', () => {
  let named: TestGateway
  beforeAll(async () => {
    named = await startTestGateway(clientCertConfig(upstream.url, {
      issuerCa: pki.ca.cert,
      open: true,
      server: { trusted_proxies: ['127.0.0.1/32'], forward_auth_peers: ['127.0.0.1/32'], forwarded_client_cert: { header: 'X-SSL-Client-Cert', chain_header: 'X-SSL-Client-Chain' } },
    }))
  })
  afterAll(async () => {
    await named?.close()
  })

  async function send(path: string, headers: Record<string, string>, localAddress: string): Promise<Answer> {
    const agent = new Agent({ localAddress })
    try {
      const res = await request(`${named.url}${path}`, { dispatcher: agent, headers })
      return answerOf(res.statusCode, res.headers, await res.body.text())
    } finally {
      await agent.close()
    }
  }

  it('reads them from the trusted proxy, and never forwards them or their look-alikes, from anyone', async () => {
    const fields = { 'x-ssl-client-cert': field(certs.loader.cert), 'x-ssl-client-chain': field(meshCa.cert) }
    const ok = await send('/data/x', fields, '127.0.0.1')
    expect(ok.status, JSON.stringify(ok.body)).toBe(200)
    expect((await send('/data/x', fields, '127.0.0.2')).status).toBe(401)
    for (const localAddress of ['127.0.0.1', '127.0.0.2']) {
      const open = await send('/open', { ...fields, x_ssl_client_cert: 'lookalike', 'client-cert': 'rfc' }, localAddress)
      expect(certificateFields(open.body).concat(Object.keys(open.body.headers as object).filter((name) => /ssl.client/i.test(name)))).toEqual([])
    }
  })

  it('answers a forward-auth check with the certificate the proxy forwards, not its own connection\'s', async () => {
    const describedGet = { 'x-original-method': 'GET', 'x-original-uri': '/data/x' }
    const allowed = await send('/.bouncer/auth', { ...describedGet, 'x-ssl-client-cert': field(certs.loader.cert), 'x-ssl-client-chain': field(meshCa.cert) }, '127.0.0.1')
    expect(allowed.status, JSON.stringify(allowed.body)).toBe(200)
    const none = await send('/.bouncer/auth', describedGet, '127.0.0.1')
    expect(none.status).toBe(401)
    expect(none.body).toMatchObject({ code: 'client_cert_required', detail: expect.stringContaining('without X-SSL-Client-Cert') })
  })
})

describe('a CA renewed with its name and key, its expired copy still in the issuer\'s ca', () => {
  let rollover: TestGateway
  beforeAll(async () => {
    // The expired copy first: the chain check takes, as OpenSSL does, the one within its dates.
    const home = dirname(pki.ca.cert)
    const run = (args: string[]) => execFileSync('openssl', args, { cwd: home, stdio: ['ignore', 'ignore', 'pipe'] })
    writeFileSync(join(home, 'old.ext'), 'basicConstraints=critical,CA:TRUE\nkeyUsage=critical,keyCertSign,cRLSign\nsubjectKeyIdentifier=hash\n')
    run(['req', '-new', '-key', pki.ca.key, '-subj', '/CN=Test CA/O=Bouncer tests', '-out', 'old.csr'])
    run(['ca', '-batch', '-selfsign', '-notext', '-config', join(home, 'ca.cnf'), '-keyfile', pki.ca.key, '-in', 'old.csr', '-out', 'old.crt', '-extfile', 'old.ext', '-startdate', '20200101000000Z', '-enddate', '20200201000000Z'])
    const both = join(home, 'old-and-renewed.pem')
    writeFileSync(both, readFileSync(join(home, 'old.crt'), 'latin1') + readFileSync(pki.ca.cert, 'latin1'))
    rollover = await startTestGateway(clientCertConfig(upstream.url, { issuerCa: both, server: { trusted_proxies: ['127.0.0.1/32'], forwarded_client_cert: {} } }))
  })
  afterAll(async () => {
    await rollover?.close()
  })

  it('accepts a certificate of the renewed CA (it was refused as chaining to the expired copy)', async () => {
    const res = await request(`${rollover.url}/data/x`, { headers: { 'client-cert': field(certs.loader.cert), 'client-cert-chain': field(meshCa.cert) } })
    const body = await res.body.text()
    expect(res.statusCode, body).toBe(200)
  })
})

describe('the forwarded chain check, beside the TLS handshake', () => {
  // Certificates of every shape the checks tell apart, made with `openssl x509 -req` (extensions
  // as written), each presented to a real TLS listener that asks for client certificates (what
  // the gateway's own listener does) and checked as a forwarded one: the verdicts agree.
  let dir: string
  const made = (name: string) => join(dir, `${name}.crt`)
  const openssl = (args: string[]) => execFileSync('openssl', args, { cwd: dir, stdio: ['ignore', 'ignore', 'pipe'] })

  /** `key`: openssl req's -newkey and -pkeyopt arguments; `digest`: what the issuer signs with. */
  function sign(name: string, issuer: string, extensions: string, { key = ['ec', '-pkeyopt', 'ec_paramgen_curve:P-256'], digest = 'sha256', sigopt = [] as string[] } = {}): void {
    writeFileSync(join(dir, `${name}.ext`), extensions)
    openssl(['req', '-new', '-newkey', ...key, '-nodes', '-subj', `/CN=${name}`, '-keyout', `${name}.key`, '-out', `${name}.csr`])
    openssl(['x509', '-req', '-in', `${name}.csr`, '-CA', `${issuer}.crt`, '-CAkey', `${issuer}.key`, '-CAcreateserial', '-days', '10', `-${digest}`, ...sigopt.flatMap((opt) => ['-sigopt', opt]), '-extfile', `${name}.ext`, '-out', `${name}.crt`])
  }

  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'bouncer-chains-'))
    openssl(['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-days', '30', '-subj', '/CN=root', '-keyout', 'root.key', '-out', 'root.crt',
      '-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign,cRLSign'])
    const ca = 'basicConstraints=critical,CA:TRUE\nkeyUsage=critical,keyCertSign\n'
    sign('server', 'root', 'basicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\nsubjectAltName=DNS:localhost\n')
    sign('intOk', 'root', ca)
    sign('intEkuServer', 'root', `${ca}extendedKeyUsage=serverAuth\n`)
    sign('intNotCa', 'root', 'basicConstraints=critical,CA:FALSE\nkeyUsage=critical,keyCertSign\n')
    sign('intPath0', 'root', 'basicConstraints=critical,CA:TRUE,pathlen:0\nkeyUsage=critical,keyCertSign\n')
    sign('intUnder', 'intPath0', ca)
    sign('leafOk', 'intOk', 'basicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=clientAuth\n')
    sign('leafKeyAgreement', 'intOk', 'keyUsage=critical,keyAgreement\nextendedKeyUsage=clientAuth\n')
    sign('leafKeyEncipherment', 'intOk', 'keyUsage=critical,keyEncipherment\nextendedKeyUsage=clientAuth\n')
    sign('leafServer', 'intOk', 'extendedKeyUsage=serverAuth\n')
    sign('leafAnyUsage', 'intOk', 'extendedKeyUsage=anyExtendedKeyUsage\n')
    sign('leafPlain', 'intOk', 'subjectKeyIdentifier=hash\n')
    sign('leafUnknownCritical', 'intOk', 'extendedKeyUsage=clientAuth\n1.2.3.4=critical,ASN1:NULL\n')
    sign('underServerCa', 'intEkuServer', 'extendedKeyUsage=clientAuth\n')
    sign('underNotCa', 'intNotCa', 'extendedKeyUsage=clientAuth\n')
    sign('tooDeep', 'intUnder', 'extendedKeyUsage=clientAuth\n')
    sign('intNoCertSign', 'root', 'basicConstraints=critical,CA:TRUE\nkeyUsage=critical,digitalSignature\n')
    sign('underNoCertSign', 'intNoCertSign', 'extendedKeyUsage=clientAuth\n')
    // A client's own v3 certificate pinned as trusted (no basicConstraints): its key signs no one.
    writeFileSync(join(dir, 'pinned.ext'), 'extendedKeyUsage=clientAuth\nsubjectKeyIdentifier=hash\n')
    openssl(['req', '-new', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-subj', '/CN=pinned', '-keyout', 'pinned.key', '-out', 'pinned.csr'])
    openssl(['x509', '-req', '-in', 'pinned.csr', '-signkey', 'pinned.key', '-days', '10', '-extfile', 'pinned.ext', '-out', 'pinned.crt'])
    sign('underPinned', 'pinned', 'extendedKeyUsage=clientAuth\n')
    // OpenSSL's security level 2 (the default): a 112-bit key and signature digest at least.
    sign('leafSha1', 'intOk', 'extendedKeyUsage=clientAuth\n', { digest: 'sha1' })
    sign('leafSha224', 'intOk', 'extendedKeyUsage=clientAuth\n', { digest: 'sha224' })
    sign('leafRsa512', 'intOk', 'extendedKeyUsage=clientAuth\n', { key: ['rsa:512'] })
    sign('leafRsa1024', 'intOk', 'extendedKeyUsage=clientAuth\n', { key: ['rsa:1024'] })
    sign('leafRsa2048', 'intOk', 'extendedKeyUsage=clientAuth\n', { key: ['rsa:2048'] })
    sign('leafP192', 'intOk', 'extendedKeyUsage=clientAuth\n', { key: ['ec', '-pkeyopt', 'ec_paramgen_curve:P-192'] })
    sign('intSha1', 'root', ca, { digest: 'sha1' })
    sign('underSha1Ca', 'intSha1', 'extendedKeyUsage=clientAuth\n')
    sign('intRsa512', 'root', ca, { key: ['rsa:512'] })
    sign('underRsa512Ca', 'intRsa512', 'extendedKeyUsage=clientAuth\n')
    sign('leafNsServer', 'intOk', 'nsCertType=server\nextendedKeyUsage=clientAuth\n')
    // basicConstraints' pathLenConstraint as an INTEGER of no octets, and as -1: both malformed.
    sign('intPathLenEmpty', 'root', 'basicConstraints=critical,DER:30:05:01:01:FF:02:00\nkeyUsage=critical,keyCertSign\n')
    sign('underPathLenEmpty', 'intPathLenEmpty', 'extendedKeyUsage=clientAuth\n')
    sign('intPathLenNegative', 'root', 'basicConstraints=critical,DER:30:06:01:01:FF:02:01:FF\nkeyUsage=critical,keyCertSign\n')
    sign('underPathLenNegative', 'intPathLenNegative', 'extendedKeyUsage=clientAuth\n')
    // A second review: an intermediate that is a CA by keyUsage alone (no basicConstraints), which
    // OpenSSL 3 refuses below the top; and an RSASSA-PSS signature by SHA-1 (one OID for every hash).
    sign('intKeyUsageOnly', 'root', 'keyUsage=critical,keyCertSign\n')
    sign('underKeyUsageOnlyCa', 'intKeyUsageOnly', 'extendedKeyUsage=clientAuth\n')
    sign('intRsa', 'root', ca, { key: ['rsa:2048'] })
    sign('leafPssSha1', 'intRsa', 'extendedKeyUsage=clientAuth\n', { digest: 'sha1', sigopt: ['rsa_padding_mode:pss', 'rsa_pss_saltlen:-1'] })
    sign('leafPssSha256', 'intRsa', 'extendedKeyUsage=clientAuth\n', { digest: 'sha256', sigopt: ['rsa_padding_mode:pss', 'rsa_pss_saltlen:-1'] })
  })
  afterAll(() => {
    if (dir) rmSync(dir, { recursive: true, force: true })
  })

  it('accepts and refuses the certificates a handshake accepts and refuses', async () => {
    // [leaf, the chain sent with it, the trusted CA (root unless named)]
    const cases: Array<[string, string[], string?]> = [
      ['leafOk', ['intOk']], ['leafKeyAgreement', ['intOk']], ['leafKeyEncipherment', ['intOk']], ['leafServer', ['intOk']],
      ['leafAnyUsage', ['intOk']], ['leafPlain', ['intOk']], ['leafUnknownCritical', ['intOk']],
      ['underServerCa', ['intEkuServer']], ['underNotCa', ['intNotCa']], ['tooDeep', ['intUnder', 'intPath0']], ['leafOk', []],
      ['underNoCertSign', ['intNoCertSign']], ['pinned', [], 'pinned'], ['underPinned', [], 'pinned'], ['underPinned', ['pinned'], 'pinned'],
      ['leafSha1', ['intOk']], ['leafSha224', ['intOk']], ['leafRsa512', ['intOk']], ['leafRsa1024', ['intOk']], ['leafRsa2048', ['intOk']], ['leafP192', ['intOk']],
      ['underSha1Ca', ['intSha1']], ['underRsa512Ca', ['intRsa512']],
      ['leafNsServer', ['intOk']], ['underPathLenEmpty', ['intPathLenEmpty']], ['underPathLenNegative', ['intPathLenNegative']],
      ['underKeyUsageOnlyCa', ['intKeyUsageOnly']], ['leafPssSha1', ['intRsa']], ['leafPssSha256', ['intRsa']],
    ]
    const listeners = new Map<string, number>()
    /** A TLS listener trusting `anchor` alone, as the gateway's own asks for a client certificate. */
    async function listenerTrusting(anchor: string): Promise<number> {
      const known = listeners.get(anchor)
      if (known !== undefined) return known
      const listener = createTlsServer({ cert: readFileSync(made('server')), key: readFileSync(join(dir, 'server.key')), ca: readFileSync(made(anchor)), requestCert: true, rejectUnauthorized: false }, (socket) => {
        socket.end(socket.authorized ? 'accepted' : 'refused')
      })
      listener.listen(0, '127.0.0.1')
      await once(listener, 'listening')
      opened.push(listener)
      const { port } = listener.address() as AddressInfo
      listeners.set(anchor, port)
      return port
    }
    const opened: Array<ReturnType<typeof createTlsServer>> = []
    try {
      const verdicts: Array<[string, string, string]> = []
      for (const [leaf, chain, anchor = 'root'] of cases) {
        const cert = Buffer.concat([leaf, ...chain].map((name) => readFileSync(made(name))))
        // Security level 0 on the client's side, so that it sends even a weak certificate: the listener judges it.
        const socket = tlsConnect({ port: await listenerTrusting(anchor), host: '127.0.0.1', servername: 'localhost', ca: readFileSync(made('root')), cert, key: readFileSync(join(dir, `${leaf}.key`)), ciphers: 'DEFAULT:@SECLEVEL=0' })
        let handshake = ''
        socket.on('data', (chunk: Buffer) => (handshake += chunk.toString()))
        await once(socket, 'end')
        const forwarded = verifyCertificatePath(new X509Certificate(readFileSync(made(leaf))), chain.map((name) => new X509Certificate(readFileSync(made(name)))), [new X509Certificate(readFileSync(made(anchor)))])
        verdicts.push([`${leaf} via ${chain.join(', ') || 'nothing'}${anchor === 'root' ? '' : ` (trusting ${anchor})`}`, handshake, forwarded.ok ? 'accepted' : 'refused'])
      }
      expect(verdicts.filter(([, handshake, forwarded]) => handshake !== forwarded)).toEqual([])
      // What a refusal says of a usage: the one the certificate lacks (OpenSSL says INVALID_PURPOSE for each).
      const verifier = clientCertVerifier([{ name: 'mesh', cas: [new X509Certificate(readFileSync(made('root')))] }], Date.now, { header: 'Client-Cert', chainHeader: 'Client-Cert-Chain' })
      const nsServer = ['Client-Cert', `:${new X509Certificate(readFileSync(made('leafNsServer'))).raw.toString('base64')}:`, 'Client-Cert-Chain', `:${new X509Certificate(readFileSync(made('intOk'))).raw.toString('base64')}:`]
      const refused = await verifier.authenticate({ headers: null, rawHeaders: nsServer, query: '', socket: {} as Socket, viaTrustedProxy: true }).catch((err: unknown) => err)
      expect(refused).toMatchObject({ code: 'client_cert_required', detail: 'The client certificate "CN=leafNsServer" is not for client authentication (its Netscape cert type lacks SSL client).' })
      expect(verdicts.filter(([, handshake]) => handshake === 'accepted').map(([name]) => name)).toEqual(['leafOk via intOk', 'leafKeyAgreement via intOk', 'leafPlain via intOk', 'pinned via nothing (trusting pinned)', 'leafSha224 via intOk', 'leafRsa2048 via intOk', 'leafPssSha256 via intRsa'])
    } finally {
      for (const listener of opened) listener.close()
    }
  })
})
