// Upstream TLS (upstreams[].tls): a test CA made with openssl, an https upstream on loopback with a
// certificate for sales.internal, and one that requires a client certificate (mTLS). Verification
// is on by default and cannot be turned off, not even by NODE_TLS_REJECT_UNAUTHORIZED=0.
import { execFileSync } from 'node:child_process'
import { once } from 'node:events'
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises'
import { createServer, type Server } from 'node:https'
import type { AddressInfo } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import type { TLSSocket } from 'node:tls'
import { request } from 'undici'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { formatDiagnostic, loadConfigText } from '../../src/config/index.ts'
import { startTestGateway, type TestGateway } from '../helpers/gateway.ts'
import { waitForMetric } from '../helpers/wait.ts'

let dir: string
const files = (name: string) => join(dir, name)
const servers: Server[] = []
const gateways: TestGateway[] = []

function openssl(...args: string[]): void {
  execFileSync('openssl', args, { cwd: dir, stdio: 'pipe' })
}

/** A CA, a server certificate for sales.internal, and a client certificate, all signed by the CA. */
async function makeCertificates(): Promise<void> {
  const ec = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes']
  openssl('req', '-x509', ...ec, '-keyout', 'ca.key', '-out', 'ca.pem', '-days', '2', '-subj', '/CN=Bouncer test CA')
  await writeFile(files('server.ext'), 'subjectAltName=DNS:sales.internal\nextendedKeyUsage=serverAuth\n')
  openssl('req', ...ec, '-keyout', 'server.key', '-out', 'server.csr', '-subj', '/CN=sales.internal')
  openssl('x509', '-req', '-in', 'server.csr', '-CA', 'ca.pem', '-CAkey', 'ca.key', '-CAcreateserial', '-out', 'server.pem', '-days', '2', '-extfile', 'server.ext')
  await writeFile(files('client.ext'), 'extendedKeyUsage=clientAuth\n')
  openssl('req', ...ec, '-keyout', 'client.key', '-out', 'client.csr', '-subj', '/CN=bouncer-gateway')
  openssl('x509', '-req', '-in', 'client.csr', '-CA', 'ca.pem', '-CAkey', 'ca.key', '-CAcreateserial', '-out', 'client.pem', '-days', '2', '-extfile', 'client.ext')
  openssl('req', ...ec, '-keyout', 'other.key', '-out', 'other.csr', '-subj', '/CN=other')
}

/** An https upstream answering who it saw: the client certificate's subject, if any. */
async function httpsUpstream(options: { requireClientCert: boolean }): Promise<string> {
  const server = createServer({
    key: await readFile(files('server.key')),
    cert: await readFile(files('server.pem')),
    ca: await readFile(files('ca.pem')),
    requestCert: options.requireClientCert,
    rejectUnauthorized: options.requireClientCert,
  }, (req, res) => {
    const peer = (req.socket as TLSSocket).getPeerCertificate()
    res.writeHead(200, { 'content-type': 'application/json' })
    res.end(JSON.stringify({ path: req.url, client: peer?.subject?.CN ?? null, sni: (req.socket as TLSSocket & { servername?: string }).servername ?? null }))
  })
  server.listen(0, '127.0.0.1')
  await once(server, 'listening')
  servers.push(server)
  return `https://127.0.0.1:${(server.address() as AddressInfo).port}`
}

async function gatewayFor(upstream: Record<string, unknown>): Promise<TestGateway> {
  const gw = await startTestGateway({
    upstreams: [{ name: 'sales', ...upstream }],
    routes: [{ id: 'sales', path: '/*', upstream: 'sales', public: true }],
  })
  gateways.push(gw)
  return gw
}

async function get(gw: TestGateway, path = '/orders') {
  const res = await request(`${gw.url}${path}`)
  return { status: res.statusCode, body: (await res.body.json()) as Record<string, unknown> }
}

let plain: string
let mutual: string

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'bouncer-upstream-tls-'))
  await makeCertificates()
  plain = await httpsUpstream({ requireClientCert: false })
  mutual = await httpsUpstream({ requireClientCert: true })
})

afterAll(async () => {
  for (const gw of gateways) await gw.close()
  for (const server of servers) {
    server.closeAllConnections()
    server.close()
  }
  await rm(dir, { recursive: true, force: true })
})

describe('upstream TLS', () => {
  it('verifies the upstream against the configured CA and server_name (SNI sent), and health checks go over TLS too', async () => {
    const gw = await gatewayFor({
      targets: [plain],
      tls: { ca: files('ca.pem'), server_name: 'sales.internal' },
      health_check: { path: '/healthz', interval: '100ms' },
    })
    expect(await get(gw)).toEqual({ status: 200, body: { path: '/orders', client: null, sni: 'sales.internal' } })
    await waitForMetric(gw.adminUrl, `bouncer_upstream_target_up{upstream="sales",target="${plain}"}`, 1)
  })

  it('a server_name the certificate does not carry: 502 upstream_unavailable saying why', async () => {
    const gw = await gatewayFor({ url: plain, tls: { ca: files('ca.pem'), server_name: 'billing.internal' } })
    const { status, body } = await get(gw)
    expect(status).toBe(502)
    expect(body.code).toBe('upstream_unavailable')
    expect(body.detail).toMatch(/TLS handshake failed \(ERR_TLS_CERT_ALTNAME_INVALID: .*billing\.internal.*sales\.internal/)
  })

  it('without a CA the system trust store decides: a private CA is refused, even with NODE_TLS_REJECT_UNAUTHORIZED=0', async () => {
    const gw = await gatewayFor({ url: plain })
    const before = process.env.NODE_TLS_REJECT_UNAUTHORIZED
    process.env.NODE_TLS_REJECT_UNAUTHORIZED = '0'
    try {
      const { status, body } = await get(gw)
      expect(status).toBe(502)
      expect(body.code).toBe('upstream_unavailable')
      expect(body.detail).toMatch(/TLS handshake failed \((UNABLE_TO_VERIFY_LEAF_SIGNATURE|UNABLE_TO_GET_ISSUER_CERT_LOCALLY|SELF_SIGNED_CERT_IN_CHAIN)/)
    } finally {
      if (before === undefined) delete process.env.NODE_TLS_REJECT_UNAUTHORIZED
      else process.env.NODE_TLS_REJECT_UNAUTHORIZED = before
    }
  })

  it('mTLS: an upstream that requires a client certificate gets the configured one, and refuses a gateway without one', async () => {
    const withCert = await gatewayFor({ url: mutual, tls: { ca: files('ca.pem'), cert: files('client.pem'), key: files('client.key'), server_name: 'sales.internal' } })
    expect(await get(withCert)).toMatchObject({ status: 200, body: { client: 'bouncer-gateway' } })
    const without = await gatewayFor({ url: mutual, tls: { ca: files('ca.pem'), server_name: 'sales.internal' } })
    const { status, body } = await get(without)
    // TLS 1.3: the client's handshake is over before the server checks it, so the refusal arrives
    // as an alert and a close after the request was sent; it read "failed mid-exchange".
    expect(status).toBe(502)
    expect(body.code).toBe('upstream_unavailable')
    expect(body.detail).toMatch(/TLS handshake failed \(ERR_SSL_TLSV13_ALERT_CERTIFICATE_REQUIRED: .*alert certificate required/)
  })

  it('mTLS refused: a target that wants a client certificate never read the request, so even a POST goes to the next target', async () => {
    const gw = await gatewayFor({
      targets: [mutual, plain], balance: 'round_robin',
      tls: { ca: files('ca.pem'), server_name: 'sales.internal' },
      retries: { attempts: 2, on: ['connect_failure'], budget: '100%' },
    })
    // round_robin: one of the two requests goes to the mutual target first (a 502 "failed
    // mid-exchange" before, a reset not retried for a POST).
    for (let i = 0; i < 2; i++) {
      const res = await request(`${gw.url}/orders`, { method: 'POST', body: '{}' })
      expect(res.statusCode).toBe(200)
      expect(await res.body.json()).toMatchObject({ client: null })
    }
  })

  it('a reload reads the files again: a replaced CA file is in force for new connections', async () => {
    openssl('req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', 'other-ca.key', '-out', 'other-ca.pem', '-days', '2', '-subj', '/CN=Another CA')
    await writeFile(files('in-force.pem'), await readFile(files('ca.pem')))
    const gw = await gatewayFor({ url: plain, tls: { ca: files('in-force.pem'), server_name: 'sales.internal' } })
    expect((await get(gw)).status).toBe(200)
    await writeFile(files('in-force.pem'), await readFile(files('other-ca.pem')))
    expect((await gw.reload()).ok).toBe(true)
    const { status, body } = await get(gw)
    expect(status).toBe(502)
    expect(body.detail).toContain('TLS handshake failed')
  })

  it('bouncer check reads the files: unreadable, not a certificate, a key that is not the certificate\'s, tls on an http target', async () => {
    const text = [
      'upstreams:',
      '  - name: a',
      '    url: https://127.0.0.1:1',
      '    tls: { ca: ./missing.pem }',
      '  - name: b',
      '    url: https://127.0.0.1:2',
      '    tls: { ca: ./client.key, cert: ./client.pem, key: ./other.key }',
      '  - name: c',
      '    url: http://127.0.0.1:3',
      '    tls: { ca: ./ca.pem }',
      '  - name: d',
      '    targets: [https://127.0.0.1:4, https://127.0.0.1:5]',
      '    tls: { ca: ./ca.pem, cert: ./client.pem, key: ./client.key, server_name: sales.internal }',
      '    health_check: { path: /healthz }',
      'routes: []',
    ].join('\n')
    const file = files('check.yaml')
    const loaded = loadConfigText(text, file)
    const lines = loaded.diagnostics.map((d) => formatDiagnostic('check.yaml', d))
    expect(lines).toEqual([
      expect.stringMatching(/^check\.yaml:4:\d+: upstreams\[0\]\.tls\.ca: cannot read .*missing\.pem: no such file$/),
      expect.stringMatching(/^check\.yaml:7:\d+: upstreams\[1\]\.tls\.ca: .*client\.key holds no PEM certificate/),
      expect.stringMatching(/^check\.yaml:7:\d+: upstreams\[1\]\.tls\.key: .*other\.key is not the key of the certificate in .*client\.pem$/),
      'check.yaml:9:10: upstreams[2].url: tls applies to https:// targets; http://127.0.0.1:3 is http://',
    ])
  })
})
