// server.tls.client_ca names the CAs client certificates must chain to. OpenSSL checks a chain up
// to a self-signed root of that list (Node's TLS server offers no partial chains), so a probe that
// listed an issuing CA alone got every certificate it signed refused — 401 client_cert_required,
// "signed by another CA ("CN=Mesh Intermediate"), not one of server.tls.client_ca", naming the very
// CA listed — while `bouncer check` said ok. It is a check error now, saying to add the root (a
// cross-signed copy of a root listed beside the root itself is that root, and passes).
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
let intermediate: Issued
let leaf: Issued
let upstream: TestUpstream | undefined
let gateway: TestGateway | undefined

function openssl(args: string[]): void {
  execFileSync('openssl', args, { cwd: pki.dir, stdio: ['ignore', 'ignore', 'pipe'] })
}

/** A CA signed by the test root, and a workload certificate it signs (sent with it, as a chain). */
function issueIntermediate(): void {
  const at = (name: string) => join(pki.dir, name)
  writeFileSync(at('int.ext'), 'basicConstraints=critical,CA:TRUE,pathlen:0\nkeyUsage=critical,keyCertSign,cRLSign\n')
  openssl(['req', '-new', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', at('int.key'), '-out', at('int.csr'), '-subj', '/CN=Mesh Intermediate/O=Bouncer tests'])
  openssl(['x509', '-req', '-in', at('int.csr'), '-CA', pki.ca.cert, '-CAkey', pki.ca.key, '-set_serial', '7001', '-days', '30', '-out', at('int.crt'), '-extfile', at('int.ext')])
  writeFileSync(at('leaf.ext'), 'basicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=clientAuth\nsubjectAltName=URI:spiffe://prod/ns/etl/sa/loader\n')
  openssl(['req', '-new', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', at('leaf.key'), '-out', at('leaf.csr'), '-subj', '/CN=loader'])
  openssl(['x509', '-req', '-in', at('leaf.csr'), '-CA', at('int.crt'), '-CAkey', at('int.key'), '-set_serial', '7002', '-days', '7', '-out', at('leaf.crt'), '-extfile', at('leaf.ext')])
  writeFileSync(at('leaf-chain.crt'), readFileSync(at('leaf.crt'), 'utf8') + readFileSync(at('int.crt'), 'utf8'))
  writeFileSync(at('root-and-int.pem'), readFileSync(pki.ca.cert, 'utf8') + readFileSync(at('int.crt'), 'utf8'))
  intermediate = { cert: at('int.crt'), key: at('int.key') }
  leaf = { cert: at('leaf-chain.crt'), key: at('leaf.key') }
}

function config(clientCa: string): Record<string, unknown> {
  return {
    server: { tls: { cert: pki.server.cert, key: pki.server.key, client_ca: clientCa } },
    issuers: [{ name: 'mesh', type: 'x509', ca: intermediate.cert }],
    roles: [{ name: 'etl', assumed_by: [{ issuer: 'mesh', subject: 'spiffe://prod/ns/etl/*' }], policies: ['read'] }],
    policies: [{ name: 'read', statements: [{ sid: 'Read', effect: 'allow', actions: ['GET'], routes: ['data'] }] }],
    upstreams: [{ name: 'api', url: upstream?.url ?? 'http://127.0.0.1:1' }],
    routes: [{ id: 'data', path: '/data/*', upstream: 'api', accept: ['client_cert'] }],
  }
}

const errors = (clientCa: string) =>
  loadConfigText(stringify(config(clientCa)), join(pki.dir, 'check.yaml')).diagnostics.filter((d) => d.severity === 'error').map((d) => `${d.path.join('.')}: ${d.message}`)

beforeAll(() => {
  pki = createPki()
  issueIntermediate()
})

afterAll(async () => {
  await gateway?.close()
  await upstream?.close()
  pki?.close()
})

describe('client_ca without the root of its CA', () => {
  it('is a check error naming the CA and the root it needs', () => {
    expect(errors(intermediate.cert)).toEqual([
      `server.tls.client_ca: "CN=Mesh Intermediate, O=Bouncer tests" in ${intermediate.cert} is not a root, and the CA that signed it ("CN=Test CA, O=Bouncer tests") is not in client_ca: the TLS handshake checks a client certificate's chain up to a self-signed root of client_ca, so it would refuse every certificate this CA signed. Add that root to client_ca`,
    ])
  })

  it('takes a cross-signed copy of a root listed beside the root itself (the same CA to OpenSSL)', () => {
    // The test root's own key and name, signed by another CA: a bundle from a CA in transition.
    const at = (name: string) => join(pki.dir, name)
    writeFileSync(at('cross.ext'), 'basicConstraints=critical,CA:TRUE\nkeyUsage=critical,keyCertSign,cRLSign\n')
    openssl(['req', '-new', '-key', pki.ca.key, '-out', at('cross.csr'), '-subj', '/CN=Test CA/O=Bouncer tests'])
    openssl(['x509', '-req', '-in', at('cross.csr'), '-CA', pki.otherCa.cert, '-CAkey', pki.otherCa.key, '-set_serial', '7003', '-days', '30', '-out', at('cross.crt'), '-extfile', at('cross.ext')])
    writeFileSync(at('root-and-cross.pem'), readFileSync(pki.ca.cert, 'utf8') + readFileSync(at('cross.crt'), 'utf8') + readFileSync(intermediate.cert, 'utf8'))
    expect(errors(at('root-and-cross.pem'))).toEqual([])
  })

  it('with its root, passes check, and the CA\'s workloads are served as its x509 issuer\'s', async () => {
    const both = join(pki.dir, 'root-and-int.pem')
    expect(errors(both)).toEqual([])
    upstream = await startUpstream()
    gateway = await startTestGateway(config(both))
    const res = await requestWithCertificate(`${gateway.url}/data/x`, pki, leaf)
    expect(res.status, res.text).toBe(200)
  })
})
