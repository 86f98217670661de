// Found by an adversarial probe (helper): a CN with a control character (batch\x01nightly) was read
// as another workload's (batch01nightly). Also: identities derived from certificate fields, and
// certificates OpenSSL must not accept (server-only EKU, a CA:FALSE "intermediate").
import { execFileSync } from 'node:child_process'
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Agent, request } from 'undici'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { clientCertGateway, createPki, type Issued, type TestPki } from '../helpers/certs.ts'
import type { TestGateway } from '../helpers/gateway.ts'
import { startUpstream, type TestUpstream } from '../helpers/upstream.ts'

let pki: TestPki
let dir: string
let upstream: TestUpstream
let gateway: TestGateway

beforeAll(async () => {
  pki = createPki()
  dir = mkdtempSync(join(tmpdir(), 'bouncer-cert-fields-'))
  upstream = await startUpstream()
  gateway = await clientCertGateway(pki, upstream.url, { anyCaller: true, identityAssertion: true })
})

afterAll(async () => {
  await gateway?.close()
  await upstream?.close()
  pki?.close()
  if (dir) rmSync(dir, { recursive: true, force: true })
})

async function get(cert: string, key: string): Promise<{ status: number; body: Record<string, unknown>; sub?: unknown }> {
  const agent = new Agent({ connect: { ca: readFileSync(pki.ca.cert), servername: 'localhost', cert, key } })
  try {
    const res = await request(`${gateway.url}/data/x`, { dispatcher: agent })
    const body = (await res.body.json()) as Record<string, unknown>
    const assertion = (body.headers as Record<string, string> | undefined)?.['x-bouncer-assertion']
    const sub = assertion ? (JSON.parse(Buffer.from(assertion.split('.')[1] as string, 'base64url').toString('utf8')) as Record<string, unknown>).sub : undefined
    return { status: res.statusCode, body, sub }
  } finally {
    await agent.close()
  }
}

const read = (issued: Issued) => [readFileSync(issued.cert, 'utf8'), readFileSync(issued.key, 'utf8')] as const

describe('identity from the subject', () => {
  it('two certificates with different CNs never get the same subject (a control character in a CN)', async () => {
    const withControl = pki.ca.issue('ctl', { usage: 'client', subject: '/CN=batch\u0001nightly' })
    const plain = pki.ca.issue('plain', { usage: 'client', subject: '/CN=batch01nightly' })
    const a = await get(...read(withControl))
    const b = await get(...read(plain))
    expect(b).toMatchObject({ status: 200, sub: 'batch01nightly' })
    // What happens: 200 with sub "batch01nightly" too (Node prints the CN as "batch\\01nightly"; the
    // gateway's unescapeDnValue drops the backslash of the hex escape).
    expect(a.status === 200 ? a.sub : `refused ${a.status}`).not.toBe(b.sub)
  })
  it('a multi-valued RDN (CN=admin + O=x) and a CN that reads "admin + O=x" never get the same subject', async () => {
    const multi = pki.ca.issue('multi', { usage: 'client', subject: '/CN=admin+O=x' })
    const literal = pki.ca.issue('literal', { usage: 'client', subject: '/CN=admin \\+ O=x' })
    const a = await get(...read(multi))
    const b = await get(...read(literal))
    expect(b).toMatchObject({ status: 200, sub: 'admin + O=x' })
    // Held: Node prints each value of a multi-valued RDN on a line of its own (sub is "admin").
    expect(a.status === 200 ? a.sub : `refused ${a.status}`).not.toBe(b.sub)
  })
})

describe('certificates OpenSSL must refuse', () => {
  it('a certificate for servers only (EKU serverAuth) is not a client credential', async () => {
    const serverOnly = pki.ca.issue('server-only', { usage: 'server', san: ['URI:spiffe://prod/ns/x/sa/y'] })
    const answer = await get(...read(serverOnly))
    expect(answer.status).toBe(401)
    expect(String(answer.body.detail)).toMatch(/not for client authentication/)
  })

  it('a leaf signed by a CA:FALSE certificate of the client CA is refused', async () => {
    const notCa = pki.ca.issue('not-a-ca', { usage: 'client', san: ['URI:spiffe://prod/ns/x/sa/not-ca'] })
    const openssl = (args: string[]) => execFileSync('openssl', args, { cwd: dir, stdio: ['ignore', 'pipe', 'pipe'] })
    openssl(['req', '-new', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', 'sub.key', '-out', 'sub.csr', '-subj', '/CN=sub'])
    writeFileSync(join(dir, 'sub.ext'), 'basicConstraints = critical,CA:FALSE\nkeyUsage = critical,digitalSignature\nextendedKeyUsage = clientAuth\nsubjectAltName = URI:spiffe://prod/ns/admin/sa/root\n')
    openssl(['x509', '-req', '-in', 'sub.csr', '-CA', notCa.cert, '-CAkey', notCa.key, '-CAcreateserial', '-days', '30', '-extfile', 'sub.ext', '-out', 'sub.crt'])
    const chain = readFileSync(join(dir, 'sub.crt'), 'utf8') + readFileSync(notCa.cert, 'utf8')
    const answer = await get(chain, readFileSync(join(dir, 'sub.key'), 'utf8'))
    expect(answer.status).toBe(401)
    expect(answer.body.code).toBe('client_cert_required')
  })
})
