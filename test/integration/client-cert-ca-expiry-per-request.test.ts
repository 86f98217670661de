// What a connection's client certificate proves is worked out once, and each request on it checks
// the clock again: a connection (or a TLS session resumed from it) may outlive the certificate. It
// checked only the leaf's end: a probe's CA certificate that expired while a connection was open left
// the leaf, valid for weeks more, authenticating on it. The chain's CAs are checked per request too.
// Real TLS on loopback (node:tls), the verifier's clock moved past the CA's end.
import { X509Certificate } from 'node:crypto'
import { execFileSync } from 'node:child_process'
import { once } from 'node:events'
import { readFileSync, writeFileSync } from 'node:fs'
import type { AddressInfo, Socket } from 'node:net'
import { join } from 'node:path'
import { connect, createServer, type TLSSocket } from 'node:tls'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { GatewayError } from '../../src/errors/index.ts'
import { clientCertVerifier } from '../../src/identity/x509.ts'
import { createPki, opensslDate, type Issued, type TestPki } from '../helpers/certs.ts'

const DAY = 86_400_000
let pki: TestPki
let shortCa: string
let leaf: Issued

/** A CA whose own certificate ends in two days, and a workload certificate it signs for thirty. */
function shortLivedCaAndLeaf(): void {
  const at = (name: string) => join(pki.dir, name)
  const run = (args: string[]) => execFileSync('openssl', args, { cwd: pki.dir, stdio: ['ignore', 'ignore', 'pipe'] })
  writeFileSync(at('short-ca.ext'), 'basicConstraints=critical,CA:TRUE\nkeyUsage=critical,keyCertSign,cRLSign\n')
  run(['req', '-new', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', at('short-ca.key'), '-out', at('short-ca.csr'), '-subj', '/CN=Short CA/O=Bouncer tests'])
  run(['ca', '-selfsign', '-batch', '-notext', '-config', join(pki.dir, 'Test CA', 'ca.cnf'), '-keyfile', at('short-ca.key'), '-in', at('short-ca.csr'), '-out', at('short-ca.crt'),
    '-startdate', opensslDate(new Date(Date.now() - DAY)), '-enddate', opensslDate(new Date(Date.now() + 2 * DAY)), '-extfile', at('short-ca.ext')])
  writeFileSync(at('w.ext'), 'basicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=clientAuth\nsubjectAltName=URI:spiffe://prod/ns/etl/sa/loader\n')
  run(['req', '-new', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', at('w.key'), '-out', at('w.csr'), '-subj', '/CN=loader'])
  run(['x509', '-req', '-in', at('w.csr'), '-CA', at('short-ca.crt'), '-CAkey', at('short-ca.key'), '-set_serial', '88', '-days', '30', '-out', at('w.crt'), '-extfile', at('w.ext')])
  shortCa = at('short-ca.crt')
  leaf = { cert: at('w.crt'), key: at('w.key') }
}

beforeAll(() => {
  pki = createPki()
  shortLivedCaAndLeaf()
})

afterAll(() => pki?.close())

describe('a CA that expires while a connection is open', () => {
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
