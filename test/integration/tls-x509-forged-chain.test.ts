// Written by an adversarial probe (helper), which this held up against: which x509 issuer a client certificate is attributed to.
//
// README: "Several x509 issuers can split one client_ca between them (a mesh, a partner), and trust
// rules tell them apart by issuer." The gateway picks the issuer by walking the chain Node reports
// with getPeerCertificate(true) (src/identity/x509.ts chainFingerprints). Hypothesis: that chain is the one the
// CLIENT SENT, linked by names and key identifiers only (no signature check), not the chain OpenSSL
// verified. A partner holding a genuine leaf from its own CA can append a forged "bridge"
// certificate (subject = the partner CA's name, issuer = the mesh CA's name, signed by nobody that
// matters) plus the public mesh CA certificate: OpenSSL verifies leaf -> real partner CA (trusted
// first), the handshake is authorized; the question is whether the gateway then says "mesh".
// Result: it held (the gateway is handed no certificate the client sent beyond the leaf); kept as a regression probe.
import { execFileSync } from 'node:child_process'
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Agent, request } from 'undici'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { createPki, type Issued, type TestCa, type TestPki } from '../helpers/certs.ts'
import { startTestGateway, type TestGateway } from '../helpers/gateway.ts'
import { startUpstream, type TestUpstream } from '../helpers/upstream.ts'

let pki: TestPki
let partnerCa: TestCa
let dir: string
let upstream: TestUpstream
let gateway: TestGateway
let partnerLeaf: Issued
let forgedChainPem: string

function openssl(args: string[]): string {
  return execFileSync('openssl', args, { cwd: dir, stdio: ['ignore', 'pipe', 'pipe'] }).toString('utf8')
}

function subjectKeyId(certPath: string): string {
  const text = openssl(['x509', '-in', certPath, '-noout', '-ext', 'subjectKeyIdentifier'])
  const match = /([0-9A-F]{2}(?::[0-9A-F]{2})+)/.exec(text)
  if (!match) throw new Error(`no SKI in ${certPath}: ${text}`)
  return match[1] as string
}

beforeAll(async () => {
  pki = createPki()
  dir = mkdtempSync(join(tmpdir(), 'bouncer-forged-'))
  partnerCa = pki.newCa('Partner CA')
  // The partner's genuine client certificate, from its own CA. Its CA is free to name any workload.
  partnerLeaf = partnerCa.issue('partner-loader', { usage: 'client', san: ['URI:spiffe://prod/ns/etl/sa/loader'] })

  // Forgery, made with attacker keys only (no CA key of the gateway's is used):
  // 1. a fake "mesh CA" (same name and SKI as the real one) to sign the bridge with;
  const meshSki = subjectKeyId(pki.ca.cert)
  const partnerSki = subjectKeyId(partnerCa.cert)
  openssl(['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', 'fake-mesh.key', '-out', 'fake-mesh.crt',
    '-days', '30', '-subj', '/CN=Test CA/O=Bouncer tests',
    '-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign,cRLSign', '-addext', `subjectKeyIdentifier=${meshSki}`])
  // 2. the bridge: subject = the partner CA's name (and SKI), issuer = the mesh CA's name (and AKI).
  openssl(['req', '-new', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', 'bridge.key', '-out', 'bridge.csr', '-subj', '/CN=Partner CA/O=Bouncer tests'])
  writeFileSync(join(dir, 'bridge.ext'), [
    'basicConstraints = critical,CA:TRUE',
    'keyUsage = critical,keyCertSign,cRLSign',
    `subjectKeyIdentifier = ${partnerSki}`,
    'authorityKeyIdentifier = keyid',
    '',
  ].join('\n'))
  openssl(['x509', '-req', '-in', 'bridge.csr', '-CA', 'fake-mesh.crt', '-CAkey', 'fake-mesh.key', '-CAcreateserial', '-days', '30', '-extfile', 'bridge.ext', '-out', 'bridge.crt'])
  // What the client sends: its genuine leaf, the bridge, and the (public) real mesh CA certificate.
  forgedChainPem = readFileSync(partnerLeaf.cert, 'utf8') + readFileSync(join(dir, 'bridge.crt'), 'utf8') + readFileSync(pki.ca.cert, 'utf8')

  const bundle = join(dir, 'client-cas.pem')
  writeFileSync(bundle, readFileSync(pki.ca.cert, 'utf8') + readFileSync(partnerCa.cert, 'utf8'))
  upstream = await startUpstream()
  gateway = await startTestGateway({
    server: { tls: { cert: pki.server.cert, key: pki.server.key, client_ca: bundle, client_auth: 'optional' } },
    issuers: [
      { name: 'mesh', type: 'x509', ca: pki.ca.cert },
      { name: 'partner', type: 'x509', ca: partnerCa.cert },
    ],
    roles: [
      { name: 'etl', assumed_by: [{ issuer: 'mesh', subject: 'spiffe://prod/ns/etl/*' }], policies: ['read'] },
      { name: 'partner', assumed_by: [{ issuer: 'partner', subject: 'spiffe://partner/*' }], policies: ['read'] },
    ],
    policies: [{ name: 'read', statements: [{ sid: 'Read', effect: 'allow', actions: ['GET'], routes: ['data'] }] }],
    upstreams: [{ name: 'api', url: upstream.url, identity_assertion: true }],
    routes: [{ id: 'data', path: '/data/*', upstream: 'api', accept: ['client_cert'] }],
  })
})

afterAll(async () => {
  await gateway?.close()
  await upstream?.close()
  pki?.close()
  if (dir) rmSync(dir, { recursive: true, force: true })
})

async function get(cert: string, key: string): Promise<{ status: number; body: Record<string, unknown> }> {
  const agent = new Agent({ connect: { ca: readFileSync(pki.ca.cert), servername: 'localhost', cert, key } })
  try {
    const res = await request(`${gateway.url}/data/daily`, { dispatcher: agent })
    return { status: res.statusCode, body: (await res.body.json()) as Record<string, unknown> }
  } finally {
    await agent.close()
  }
}

describe('x509 issuer attribution with several issuers in one client_ca', () => {
  it('a partner certificate sent alone is the partner\'s (control: no mesh role)', async () => {
    const answer = await get(readFileSync(partnerLeaf.cert, 'utf8'), readFileSync(partnerLeaf.key, 'utf8'))
    expect(answer.status).toBe(403)
    expect(answer.body.code).toBe('no_role')
  })

  it('a partner certificate with a forged bridge certificate appended is still the partner\'s, never the mesh\'s', async () => {
    const answer = await get(forgedChainPem, readFileSync(partnerLeaf.key, 'utf8'))
    const assertion = (answer.body.headers as Record<string, string> | undefined)?.['x-bouncer-assertion']
    const claims = assertion ? JSON.parse(Buffer.from(assertion.split('.')[1] as string, 'base64url').toString('utf8')) as Record<string, unknown> : null
    // Held: the gateway is handed none of the certificates the client sent beyond the leaf (getPeerCertificate(true)
    // is the leaf and what client_ca completes it with: the real partner CA), so the bridge is never seen.
    expect({ status: answer.status, idp: claims?.idp, roles: claims?.roles }).toEqual({ status: 403, idp: undefined, roles: undefined })
  })
})
