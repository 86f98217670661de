// A CRL is its CA's when its issuer is the CA's subject as OpenSSL compares names (RFC 5280 §7.1):
// each value's string type, case and runs of spaces aside. A CRL written by a tool that encodes the
// issuer as PrintableString, where the CA's subject is UTF8String (as `openssl req` writes it), and
// in other case, is accepted by the TLS handshake: `bouncer check`, a start, the CRL re-checked per
// request and the forwarded certificates' path must accept it too, and name the CA as usual.
import { X509Certificate } from 'node:crypto'
import { execFileSync } from 'node:child_process'
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { dirname, join } from 'node:path'
import { Agent, request } from 'undici'
import { afterAll, beforeAll, expect, it } from 'vitest'
import { stringify } from 'yaml'
import { loadConfigText } from '../../src/config/index.ts'
import { createPki, requestWithCertificate, type Issued, type TestCa, type TestPki } from '../helpers/certs.ts'
import { revoke, writeCrl } from '../helpers/crl.ts'
import { allowAnyCaller, startTestGateway, type TestGateway } from '../helpers/gateway.ts'
import { startUpstream, type TestUpstream } from '../helpers/upstream.ts'
import { metricValue } from '../helpers/wait.ts'

let pki: TestPki
let dir: string
let crlFile: string
let upstream: TestUpstream
let gateway: TestGateway
let certs: Record<'loader' | 'thief', Issued>

/**
 * The test CA's key under another certificate whose subject is the CA's name in PrintableString
 * (string_mask nombstr), in other case and with two spaces: `openssl ca -gencrl` with it writes a
 * CRL the CA's key signed whose issuer has those bytes.
 */
function twinOf(ca: TestCa): TestCa {
  const home = dirname(ca.cert)
  writeFileSync(join(home, 'twin.cnf'), '[req]\ndistinguished_name = dn\nstring_mask = nombstr\n[dn]\n')
  const cert = join(home, 'twin.crt')
  execFileSync('openssl', ['req', '-config', join(home, 'twin.cnf'), '-x509', '-key', ca.key, '-out', cert, '-days', '2', '-subj', '/CN=TEST  ca/O=BOUNCER Tests'], { stdio: ['ignore', 'ignore', 'pipe'] })
  return { ...ca, cert }
}

const config = (server: Record<string, unknown>, issuerCa?: string) => ({
  server,
  issuers: [{ name: 'mesh', type: 'x509', ...(issuerCa === undefined ? {} : { ca: issuerCa }) }],
  ...allowAnyCaller(['mesh']),
  upstreams: [{ name: 'api', url: upstream.url }],
  routes: [{ id: 'data', path: '/data/*', upstream: 'api', accept: ['client_cert'] }],
})
const listener = () => ({ tls: { cert: pki.server.cert, key: pki.server.key, client_ca: pki.ca.cert, client_crl: crlFile, client_auth: 'optional' } })

beforeAll(async () => {
  pki = createPki()
  dir = mkdtempSync(join(tmpdir(), 'crl2-names-'))
  certs = {
    loader: pki.ca.issue('crl2-loader', { usage: 'client', san: ['URI:spiffe://prod/crl2/loader'] }),
    thief: pki.ca.issue('crl2-thief', { usage: 'client', san: ['URI:spiffe://prod/crl2/thief'] }),
  }
  revoke(pki.ca, certs.thief)
  crlFile = join(dir, 'client-crl.pem')
  writeCrl(twinOf(pki.ca), crlFile)
  upstream = await startUpstream()
}, 30_000)

afterAll(async () => {
  await gateway?.close()
  await upstream?.close()
  pki?.close()
  if (dir) rmSync(dir, { recursive: true, force: true })
})

it('the CRL really names its issuer otherwise: PrintableString, other case, two spaces', () => {
  const asn1 = execFileSync('openssl', ['asn1parse', '-in', crlFile], { encoding: 'latin1' })
  expect(asn1).toMatch(/PRINTABLESTRING +:TEST {2}ca/)
  // The CA's is UTF8String, openssl req's default.
  expect(execFileSync('openssl', ['asn1parse', '-in', pki.ca.cert], { encoding: 'latin1' })).toMatch(/UTF8STRING +:Test CA/)
})

it('bouncer check finds no fault: the CA has its CRL', () => {
  const loaded = loadConfigText(stringify(config(listener())), join(dir, 'check.yaml'))
  expect(loaded.diagnostics.map((d) => `${d.severity} ${d.path.join('.')}: ${d.message}`)).toEqual([])
})

it('the gateway serves with it: the revoked certificate is a 401 naming the CA, the others pass', async () => {
  gateway = await startTestGateway(config(listener()))
  const thief = await requestWithCertificate(`${gateway.url}/data/x`, pki, certs.thief)
  expect({ status: thief.status, detail: thief.json().detail }).toEqual({
    status: 401,
    detail: `The client certificate "CN=crl2-thief" is revoked: the CRL of "CN=Test CA, O=Bouncer tests" (server.tls.client_crl) lists its serial number ${new X509Certificate(readFileSync(certs.thief.cert)).serialNumber}.`,
  })
  expect((await requestWithCertificate(`${gateway.url}/data/x`, pki, certs.loader)).status).toBe(200)
  // Its expiry series is named as the CA is, not as the CRL writes the name.
  expect(await metricValue(gateway.adminUrl, 'bouncer_tls_client_crl_expiry_timestamp_seconds{issuer="CN=Test CA, O=Bouncer tests"}')).toBeGreaterThan(Date.now() / 1000)
}, 20_000)

it('forwarded certificates are checked against it too', async () => {
  const forwarding = await startTestGateway(config({ tls: { cert: pki.server.cert, key: pki.server.key, client_crl: crlFile }, trusted_proxies: ['127.0.0.1/32'], forwarded_client_cert: {} }, pki.ca.cert))
  const agent = new Agent({ connect: { ca: readFileSync(pki.ca.cert), servername: 'localhost' } })
  try {
    const forward = async (cert: Issued) => {
      const res = await request(`${forwarding.url}/data/x`, { dispatcher: agent, headers: { 'client-cert': `:${new X509Certificate(readFileSync(cert.cert)).raw.toString('base64')}:` } })
      await res.body.dump()
      return res.statusCode
    }
    expect({ loader: await forward(certs.loader), thief: await forward(certs.thief) }).toEqual({ loader: 200, thief: 401 })
  } finally {
    await agent.close()
    await forwarding.close()
  }
}, 20_000)
