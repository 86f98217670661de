// server.tls.client_crl: certificate revocation lists for client certificates. What users see: with
// client_auth optional, a revoked certificate's request is a 401 whose problem says so and whose
// audit record names whose certificate it was; with require, its handshake is refused; a CRL
// rewritten on disk (or a reload) is read without a restart, and refuses a certificate revoked since
// on new connections and on those kept alive from before; a certificate forwarded by a trusted
// proxy (RFC 9440) is checked against the same CRLs; `bouncer check` says what is wrong with the file.
import { once } from 'node:events'
import { X509Certificate } from 'node:crypto'
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { connect as tlsConnect, type TLSSocket } from 'node:tls'
import { Agent, request } from 'undici'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { stringify } from 'yaml'
import { loadConfigText } from '../../src/config/index.ts'
import { waitForAuditRecord } from '../helpers/audit.ts'
import { createPki, requestWithCertificate, type Issued, type TestCa, type TestPki } from '../helpers/certs.ts'
import { runCliInProcess } from '../helpers/cli-in-process.ts'
import { revoke, writeCrl, writeCrlBundle } from '../helpers/crl.ts'
import { allowAnyCaller, startTestGateway, type TestGateway } from '../helpers/gateway.ts'
import { startUpstream, type TestUpstream } from '../helpers/upstream.ts'
import { waitFor } from '../helpers/wait.ts'

let pki: TestPki
let mesh: TestCa
let dir: string
let clientCa: string
let crlFile: string
let upstream: TestUpstream
let gateway: TestGateway
let certs: Record<'loader' | 'thief' | 'later' | 'meshLoader', Issued>

/** Both CAs' CRLs as of now, into client_crl's file. */
function publishCrls(file = crlFile): string {
  return writeCrlBundle(file, [writeCrl(pki.ca, join(dir, 'root.crl')), writeCrl(mesh, join(dir, 'mesh.crl'))])
}

function config(clientAuth: 'optional' | 'require'): Record<string, unknown> {
  return {
    server: { tls: { cert: pki.server.cert, key: pki.server.key, client_ca: clientCa, client_crl: crlFile, client_auth: clientAuth } },
    audit: { sinks: [{ type: 'sqlite', path: join(dir, 'audit.db') }], spill_dir: join(dir, 'spill'), flush_interval: '20ms' },
    issuers: [{ name: 'mesh', type: 'x509' }],
    ...allowAnyCaller(['mesh']),
    upstreams: [{ name: 'api', url: upstream.url }],
    routes: [{ id: 'data', path: '/data/*', upstream: 'api', accept: ['client_cert'] }, { id: 'open', path: '/open', upstream: 'api', public: true }],
  }
}

beforeAll(async () => {
  pki = createPki()
  dir = mkdtempSync(join(tmpdir(), 'tls3-crl-'))
  mesh = pki.newCa('Mesh Intermediate', pki.ca)
  certs = {
    loader: pki.ca.issue('tls3-loader', { usage: 'client', san: ['URI:spiffe://prod/ns/etl/sa/loader'] }),
    thief: pki.ca.issue('tls3-thief', { usage: 'client', san: ['URI:spiffe://prod/ns/etl/sa/stolen'] }),
    later: pki.ca.issue('tls3-later', { usage: 'client', san: ['URI:spiffe://prod/ns/etl/sa/later'] }),
    meshLoader: mesh.issue('tls3-mesh-loader', { usage: 'client', san: ['URI:spiffe://prod/ns/mesh/sa/loader'] }),
  }
  clientCa = join(dir, 'client-ca.pem')
  writeFileSync(clientCa, readFileSync(pki.ca.cert, 'latin1') + readFileSync(mesh.cert, 'latin1'))
  crlFile = join(dir, 'client-crl.pem')
  revoke(pki.ca, certs.thief)
  publishCrls()
  upstream = await startUpstream()
  gateway = await startTestGateway(config('optional'))
})

afterAll(async () => {
  await gateway?.close()
  await upstream?.close()
  pki?.close()
  if (dir) rmSync(dir, { recursive: true, force: true })
})

const serialOf = (issued: Issued) => new X509Certificate(readFileSync(issued.cert)).serialNumber
const logCount = (text: string) => gateway.logs.filter((line) => line.includes(text)).length

/** A TLS connection presenting `cert`, kept open for several requests. */
async function keptAlive(cert: Issued): Promise<TLSSocket> {
  const { port } = new URL(gateway.url)
  const socket = tlsConnect({ host: '127.0.0.1', port: Number(port), ca: readFileSync(pki.ca.cert), servername: 'localhost', cert: readFileSync(cert.cert), key: readFileSync(cert.key), ALPNProtocols: ['http/1.1'] })
  socket.on('error', () => {})
  await once(socket, 'secureConnect')
  return socket
}

/** One keep-alive request on an open socket: its status line. */
async function requestOn(socket: TLSSocket, path: string): Promise<string> {
  socket.write(`GET ${path} HTTP/1.1\r\nHost: localhost\r\n\r\n`)
  let text = ''
  return await new Promise<string>((resolve, reject) => {
    const onData = (chunk: Buffer) => {
      text += chunk.toString('latin1')
      const head = text.indexOf('\r\n\r\n')
      if (head === -1) return
      const length = Number(/content-length: (\d+)/i.exec(text.slice(0, head))?.[1] ?? 0)
      if (text.length >= head + 4 + length) {
        socket.off('data', onData)
        resolve(text.split('\r\n')[0] as string)
      }
    }
    socket.on('data', onData)
    socket.once('close', () => reject(new Error(`closed; read so far: ${text.slice(0, 200)}`)))
  })
}

describe('client_auth optional', () => {
  it('answers a revoked certificate 401 with the reason, and audits whose it was; others go on', async () => {
    const thief = await requestWithCertificate(`${gateway.url}/data/x`, pki, certs.thief)
    expect(thief.status).toBe(401)
    expect(thief.json()).toMatchObject({
      code: 'client_cert_required',
      detail: `The client certificate "CN=tls3-thief" is revoked: the CRL of "CN=Test CA, O=Bouncer tests" (server.tls.client_crl) lists its serial number ${serialOf(certs.thief)}.`,
    })
    expect({
      loader: (await requestWithCertificate(`${gateway.url}/data/x`, pki, certs.loader)).status,
      // Signed by an intermediate of client_ca, whose own CRL (and the root's, for the intermediate) is in the file.
      meshLoader: (await requestWithCertificate(`${gateway.url}/data/x`, pki, certs.meshLoader)).status,
      thiefOnAPublicRoute: (await requestWithCertificate(`${gateway.url}/open`, pki, certs.thief)).status,
    }).toEqual({ loader: 200, meshLoader: 200, thiefOnAPublicRoute: 200 })

    const agent = new Agent({ connect: { ca: readFileSync(pki.ca.cert), servername: 'localhost', cert: readFileSync(certs.thief.cert), key: readFileSync(certs.thief.key) } })
    try {
      const res = await request(`${gateway.url}/data/audited`, { dispatcher: agent, headers: { 'x-request-id': 'tls3-revoked' } })
      await res.body.dump()
    } finally {
      await agent.close()
    }
    const record = await waitForAuditRecord(join(dir, 'audit.db'), 'tls3-revoked')
    expect(record).toMatchObject({ status: 401, code: 'client_cert_required', credential: 'client_cert', subject: 'spiffe://prod/ns/etl/sa/stolen', issuer: 'CN=Test CA, O=Bouncer tests' })
  })

  it('reads a CRL rewritten on disk without a restart: a certificate revoked since is refused, on new connections and kept-alive ones', async () => {
    const kept = await keptAlive(certs.later)
    expect(await requestOn(kept, '/data/before')).toBe('HTTP/1.1 200 OK')
    const loaded = logCount('TLS certificate loaded')
    revoke(pki.ca, certs.later)
    publishCrls()
    await waitFor(() => logCount('TLS certificate loaded') > loaded, 'the reload after client_crl changed', 15_000)
    expect({
      newConnection: (await requestWithCertificate(`${gateway.url}/data/x`, pki, certs.later)).status,
      keptAlive: await requestOn(kept, '/data/after').catch((e: Error) => e.message),
      loader: (await requestWithCertificate(`${gateway.url}/data/x`, pki, certs.loader)).status,
    }).toEqual({ newConnection: 401, keptAlive: 'HTTP/1.1 401 Unauthorized', loader: 200 })
    kept.destroy()
  })

  it('refuses a reload to a CRL file that leaves a CA of client_ca without its CRL, and keeps serving the running one', async () => {
    const onlyRoot = join(dir, 'only-root.pem')
    writeCrlBundle(onlyRoot, [writeCrl(pki.ca, join(dir, 'root-only.crl'))])
    // OpenSSL would refuse all the intermediate signed (UNABLE_TO_GET_CRL): bouncer check refuses such a file (below), and so does a reload.
    await gateway.writeConfig({ ...config('optional'), server: { tls: { ...(config('optional').server as { tls: object }).tls, client_crl: onlyRoot } } })
    const refused = await gateway.reload()
    expect(refused.ok).toBe(false)
    expect(JSON.stringify(refused)).toContain('\\"CN=Mesh Intermediate, O=Bouncer tests\\" has no CRL in')
    expect((await requestWithCertificate(`${gateway.url}/data/x`, pki, certs.meshLoader)).status).toBe(200)
    await gateway.writeConfig(config('optional'))
  })
})

describe('client_auth require (after a reload)', () => {
  it("refuses a revoked certificate's handshake, and takes the others", async () => {
    await gateway.writeConfig(config('require'))
    expect((await gateway.reload()).ok).toBe(true)
    const status = (cert: Issued) => requestWithCertificate(`${gateway.url}/data/x`, pki, cert).then((res) => res.status, (err: Error) => `refused: ${(err.cause as Error | undefined)?.message ?? err.message}`)
    expect({ thief: await status(certs.thief), later: await status(certs.later), loader: await status(certs.loader), meshLoader: await status(certs.meshLoader) }).toEqual({
      thief: expect.stringMatching(/^refused: .*(certificate revoked|socket|other side closed)/i),
      later: expect.stringMatching(/^refused: .*(certificate revoked|socket|other side closed)/i),
      loader: 200,
      meshLoader: 200,
    })
  })
})

describe('forwarded client certificates (server.forwarded_client_cert)', () => {
  it('are checked against client_crl: a revoked one is a 401 with the reason', async () => {
    const forwarding = await startTestGateway({
      server: {
        tls: { cert: pki.server.cert, key: pki.server.key, client_crl: crlFile },
        trusted_proxies: ['127.0.0.1/32'],
        forwarded_client_cert: {},
      },
      issuers: [{ name: 'mesh', type: 'x509', ca: clientCa }],
      ...allowAnyCaller(['mesh']),
      upstreams: [{ name: 'api', url: upstream.url }],
      routes: [{ id: 'data', path: '/data/*', upstream: 'api', accept: ['client_cert'] }],
    })
    const agent = new Agent({ connect: { ca: readFileSync(pki.ca.cert), servername: 'localhost' } })
    try {
      const forward = async (cert: Issued) => {
        const field = `:${new X509Certificate(readFileSync(cert.cert)).raw.toString('base64')}:`
        const res = await request(`${forwarding.url}/data/x`, { dispatcher: agent, headers: { 'client-cert': field } })
        const text = await res.body.text()
        return { status: res.statusCode, detail: res.statusCode === 200 ? null : (JSON.parse(text) as { detail: string }).detail }
      }
      expect({ loader: await forward(certs.loader), thief: await forward(certs.thief), meshLoader: await forward(certs.meshLoader) }).toEqual({
        loader: { status: 200, detail: null },
        thief: { status: 401, detail: `The client certificate "CN=tls3-thief" is revoked: the CRL of "CN=Test CA, O=Bouncer tests" (server.tls.client_crl) lists its serial number ${serialOf(certs.thief)}.` },
        meshLoader: { status: 200, detail: null },
      })
      // The intermediate revoked by its root: what it signed is refused, the intermediate named.
      revoke(pki.ca, { cert: mesh.cert })
      publishCrls()
      expect((await forwarding.reload()).ok).toBe(true)
      expect(await forward(certs.meshLoader)).toEqual({
        status: 401,
        detail: `The client certificate "CN=tls3-mesh-loader" chains through the CA certificate "CN=Mesh Intermediate, O=Bouncer tests", which is revoked: the CRL of "CN=Test CA, O=Bouncer tests" (server.tls.client_crl) lists its serial number ${new X509Certificate(readFileSync(mesh.cert)).serialNumber}.`,
      })
    } finally {
      await agent.close()
      await forwarding.close()
    }
  })
})

describe('bouncer check', () => {
  const checkConfig = (crl: string) => ({
    server: { tls: { cert: pki.server.cert, key: pki.server.key, client_ca: clientCa, client_crl: crl } },
    issuers: [{ name: 'mesh', type: 'x509' }],
    ...allowAnyCaller(['mesh']),
    upstreams: [{ name: 'api', url: 'http://127.0.0.1:9' }],
    routes: [{ id: 'data', path: '/data/*', upstream: 'api', accept: ['client_cert'] }],
  })
  /** The root's CRL alone: the intermediate of client_ca has none. */
  const onlyRootCrl = () => writeCrlBundle(join(dir, 'only-root-check.pem'), [writeCrl(pki.ca, join(dir, 'root-check.crl'))])
  /** The root's CRL past its nextUpdate, the intermediate's, and another CA's. */
  const staleCrl = () => writeCrlBundle(join(dir, 'stale.pem'), [
    writeCrl(pki.ca, join(dir, 'stale-root.crl'), { thisUpdate: new Date(Date.now() - 48 * 3_600_000), nextUpdate: new Date(Date.now() - 3_600_000) }),
    writeCrl(mesh, join(dir, 'stale-mesh.crl')),
    writeCrl(pki.otherCa, join(dir, 'other.crl')),
  ])
  const diagnostics = (crl: string) =>
    loadConfigText(stringify(checkConfig(crl)), join(dir, 'check.yaml')).diagnostics.map((d) => `${d.severity} ${d.path.join('.')}: ${d.message}`)

  it('takes a CRL path relative to the config', () => {
    publishCrls()
    const relative = loadConfigText(stringify(checkConfig('./client-crl.pem')), join(dir, 'relative.yaml'))
    expect(relative.diagnostics).toEqual([])
    expect(relative.config?.server.tls?.client_crl).toBe(crlFile)
  })

  it('refuses a file that is no CRL, and a CA of client_ca without its CRL', () => {
    const noCrl = join(dir, 'no-crl.pem')
    writeFileSync(noCrl, readFileSync(pki.ca.cert))
    const onlyRoot = onlyRootCrl()
    expect(diagnostics(noCrl)).toContain(`error server.tls.client_crl: ${noCrl} holds no PEM CRL (-----BEGIN X509 CRL-----)`)
    expect(diagnostics(onlyRoot)).toContain(`error server.tls.client_crl: "CN=Mesh Intermediate, O=Bouncer tests" has no CRL in ${onlyRoot}: given CRLs, the TLS handshake checks every certificate of a chain below its root against its CA's CRL, and refuses one whose CA has none (UNABLE_TO_GET_CRL), so every certificate this CA signed would be refused. Add its CRL (one that revokes nothing will do)`)
  })

  it('warns of a CRL past its nextUpdate, and of one no CA of client_ca signed', () => {
    const stale = staleCrl()
    const warnings = diagnostics(stale).filter((line) => line.startsWith('warning'))
    expect(warnings).toEqual([
      expect.stringMatching(new RegExp(`^warning server\\.tls\\.client_crl: the CRL of "CN=Test CA, O=Bouncer tests" in ${stale} is out of date: its nextUpdate was \\S+, and until a newer one replaces it the TLS handshake refuses every certificate that CA signed \\(CRL_HAS_EXPIRED\\)$`)),
      `warning server.tls.client_crl: CRL 3 of ${stale} is issued by "CN=Other CA, O=Bouncer tests", which is not a CA client certificates chain to here: it revokes nothing`,
    ])
    expect(diagnostics(stale).filter((line) => line.startsWith('error'))).toEqual([])
  })

  it('exits 1 on an error and 0 on warnings alone, with the file and line', async () => {
    const onlyRootFile = join(dir, 'only-root.yaml')
    writeFileSync(onlyRootFile, stringify(checkConfig(onlyRootCrl())))
    const staleFile = join(dir, 'stale.yaml')
    writeFileSync(staleFile, stringify(checkConfig(staleCrl())))
    const [onlyRoot, stale] = await Promise.all([runCliInProcess(['check', '--config', onlyRootFile]), runCliInProcess(['check', '--config', staleFile])])
    expect(onlyRoot.code).toBe(1)
    expect(onlyRoot.stderr).toMatch(new RegExp(`^${onlyRootFile}:\\d+:\\d+: server\\.tls\\.client_crl: "CN=Mesh Intermediate, O=Bouncer tests" has no CRL in `, 'm'))
    expect(stale).toMatchObject({ code: 0, stdout: 'ok (2 warnings)\n' })
    expect(stale.stderr).toContain('is out of date: its nextUpdate was')
  })
})
