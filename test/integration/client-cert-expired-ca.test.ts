// OpenSSL's verdict on a client certificate is of its whole chain. A probe presented a certificate
// valid for another month, signed by a CA whose own certificate had expired: the 401 said
// "The client certificate "CN=under-expired" expired at <a date a month ahead>", sending its
// operator to renew a certificate that was fine. The detail now says it is the CA's certificate
// that expired, and names it; a leaf that expired itself is still told so. And `bouncer check`,
// which warns of an expired server certificate, said nothing of the expired client CA: it warns now.
import { execFileSync } from 'node:child_process'
import { readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { stringify } from 'yaml'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { loadConfigText } from '../../src/config/index.ts'
import { createPki, requestWithCertificate, type Issued, type TestPki } from '../helpers/certs.ts'
import { startTestGateway, type TestGateway } from '../helpers/gateway.ts'
import { startUpstream, type TestUpstream } from '../helpers/upstream.ts'

let pki: TestPki
let upstream: TestUpstream
let gateway: TestGateway
let underExpiredCa: Issued
let clientCa: string

/** A self-signed CA that expired in 2020 (`openssl ca -selfsign` sets its dates), and a leaf it signs today for 30 days. */
function expiredCaAndLeaf(): { ca: string; leaf: Issued } {
  const at = (name: string) => join(pki.dir, name)
  const run = (args: string[]) => execFileSync('openssl', args, { cwd: pki.dir, stdio: ['ignore', 'ignore', 'pipe'] })
  writeFileSync(at('old-ca.ext'), 'basicConstraints=critical,CA:TRUE\nkeyUsage=critical,keyCertSign,cRLSign\n')
  run(['req', '-new', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', at('old-ca.key'), '-out', at('old-ca.csr'), '-subj', '/CN=Old CA/O=Bouncer tests'])
  run(['ca', '-selfsign', '-batch', '-notext', '-config', join(pki.dir, 'Test CA', 'ca.cnf'), '-keyfile', at('old-ca.key'), '-in', at('old-ca.csr'), '-out', at('old-ca.crt'),
    '-startdate', '20200101000000Z', '-enddate', '20200102000000Z', '-extfile', at('old-ca.ext')])
  writeFileSync(at('under.ext'), 'basicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=clientAuth\nsubjectAltName=URI:spiffe://prod/ns/etl/sa/under\n')
  run(['req', '-new', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', at('under.key'), '-out', at('under.csr'), '-subj', '/CN=under-expired'])
  run(['x509', '-req', '-in', at('under.csr'), '-CA', at('old-ca.crt'), '-CAkey', at('old-ca.key'), '-set_serial', '77', '-days', '30', '-out', at('under.crt'), '-extfile', at('under.ext')])
  return { ca: at('old-ca.crt'), leaf: { cert: at('under.crt'), key: at('under.key') } }
}

beforeAll(async () => {
  pki = createPki()
  const made = expiredCaAndLeaf()
  underExpiredCa = made.leaf
  clientCa = join(pki.dir, 'client-ca.pem')
  writeFileSync(clientCa, readFileSync(pki.ca.cert, 'utf8') + readFileSync(made.ca, 'utf8'))
  upstream = await startUpstream()
  gateway = await startTestGateway({
    server: { tls: { cert: pki.server.cert, key: pki.server.key, client_ca: clientCa, client_auth: 'optional' } },
    issuers: [{ name: 'mesh', type: 'x509' }],
    roles: [{ name: 'etl', assumed_by: [{ issuer: 'mesh', subject: 'spiffe://prod/*' }], policies: ['read'] }],
    policies: [{ name: 'read', statements: [{ sid: 'Read', effect: 'allow', actions: ['GET'], routes: ['data'] }] }],
    upstreams: [{ name: 'api', url: upstream.url }],
    routes: [{ id: 'data', path: '/data/*', upstream: 'api', accept: ['client_cert'] }],
  })
})

afterAll(async () => {
  await gateway?.close()
  await upstream?.close()
  pki?.close()
})

async function detailFor(cert: Issued): Promise<unknown> {
  const res = await requestWithCertificate(`${gateway.url}/data/x`, pki, cert)
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
