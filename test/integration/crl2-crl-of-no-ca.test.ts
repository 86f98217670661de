// A CRL in client_crl whose issuer is no CA client certificates chain to here revokes nothing: the
// handshake never consults it. `bouncer check` says so, and the gateway gives it no
// bouncer_tls_client_crl_expiry_timestamp_seconds series and no expiry warnings, which would page
// an operator for a date that refuses nobody. The CA in use keeps its series and warnings.
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { request } from 'undici'
import { afterAll, beforeAll, expect, it } from 'vitest'
import { stringify } from 'yaml'
import { loadConfigText } from '../../src/config/index.ts'
import { createPki, requestWithCertificate, type Issued, type TestPki } from '../helpers/certs.ts'
import { writeCrl, writeCrlBundle } from '../helpers/crl.ts'
import { allowAnyCaller, startTestGateway, type TestGateway } from '../helpers/gateway.ts'
import { startUpstream, type TestUpstream } from '../helpers/upstream.ts'

let pki: TestPki
let dir: string
let crlFile: string
let upstream: TestUpstream
let gateway: TestGateway
let loader: Issued
const HOUR = 3_600_000

const config = () => ({
  server: { tls: { cert: pki.server.cert, key: pki.server.key, client_ca: pki.ca.cert, client_crl: crlFile, client_auth: 'optional' } },
  issuers: [{ name: 'mesh', type: 'x509' }],
  ...allowAnyCaller(['mesh']),
  upstreams: [{ name: 'api', url: upstream.url }],
  routes: [{ id: 'data', path: '/data/*', upstream: 'api', accept: ['client_cert'] }],
})

beforeAll(async () => {
  pki = createPki()
  dir = mkdtempSync(join(tmpdir(), 'crl2-no-ca-'))
  loader = pki.ca.issue('crl2-loader', { usage: 'client', san: ['URI:spiffe://prod/crl2/loader'] })
  crlFile = join(dir, 'client-crl.pem')
  // The CA in use: a week to go. Other CA (not in client_ca): due within the hour, which would warn at once.
  writeCrlBundle(crlFile, [
    writeCrl(pki.ca, join(dir, 'ca.crl'), { nextUpdate: new Date(Date.now() + 7 * 24 * HOUR) }),
    writeCrl(pki.otherCa, join(dir, 'other.crl'), { nextUpdate: new Date(Date.now() + HOUR) }),
  ])
  upstream = await startUpstream()
}, 30_000)

afterAll(async () => {
  await gateway?.close()
  await upstream?.close()
  pki?.close()
  if (dir) rmSync(dir, { recursive: true, force: true })
})

it('bouncer check warns that the CRL matches no CA in use, and nothing else', () => {
  const loaded = loadConfigText(stringify(config()), join(dir, 'check.yaml'))
  expect(loaded.diagnostics.map((d) => `${d.severity} ${d.path.join('.')}: ${d.message}`)).toEqual([
    `warning server.tls.client_crl: CRL 2 of ${crlFile} is issued by "CN=Other CA, O=Bouncer tests", which is not a CA client certificates chain to here: it revokes nothing`,
  ])
})

it('gives that CRL no expiry series and no expiry warning; the CA in use has its own', async () => {
  gateway = await startTestGateway(config())
  expect((await requestWithCertificate(`${gateway.url}/data/x`, pki, loader)).status).toBe(200)
  const metrics = await (await request(`${gateway.adminUrl}/metrics`)).body.text()
  expect(metrics.split('\n').filter((line) => line.startsWith('bouncer_tls_client_crl_expiry_timestamp_seconds{'))).toEqual([
    expect.stringMatching(/^bouncer_tls_client_crl_expiry_timestamp_seconds\{issuer="CN=Test CA, O=Bouncer tests"\} \d+$/),
  ])
  const expiryWarnings = gateway.logs.filter((line) => line.includes('client CRL goes out of date') || line.includes('client CRL is out of date'))
  expect(expiryWarnings).toEqual([])
}, 20_000)
