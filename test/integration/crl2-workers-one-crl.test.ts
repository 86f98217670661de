// server.workers: 2 and client_crl rewritten between two workers' reads of one reload (each worker
// reads the TLS files while it prepares it). Before, the reload was in force with w1 on the old CRL
// and w2 on the new one, a revoked certificate let in by one worker and refused by the other until
// the file's own change brought the next reload (~1.2 s). Now the workers say which TLS files they
// read, CRLs too, and a reload whose workers read two is refused on all: the next, asked for by the
// change itself, installs one CRL everywhere.
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { request } from 'undici'
import { afterAll, beforeAll, expect, it } from 'vitest'
import { createPki, requestWithCertificate, type Issued, type TestPki } from '../helpers/certs.ts'
import type { ServeProcess } from '../helpers/cli.ts'
import { revoke, writeCrl } from '../helpers/crl.ts'
import { allowAnyCaller } from '../helpers/gateway.ts'
import { inspectWorker } from '../helpers/inspector.ts'
import { startUpstream, type TestUpstream } from '../helpers/upstream.ts'
import { waitFor } from '../helpers/wait.ts'
import { serveWithWorkers } from '../helpers/workers.ts'

const ADMIN_TOKEN = 'crl2-workers-one-crl-admin-token-0123'
let dir: string
let pki: TestPki
let upstream: TestUpstream
let gateway: ServeProcess
let crlFile: string
let later: Issued

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'crl2-workers-'))
  pki = createPki()
  later = pki.ca.issue('crl2-later', { usage: 'client', san: ['URI:spiffe://prod/crl2/later'] })
  crlFile = join(dir, 'client-crl.pem')
  writeCrl(pki.ca, crlFile)
  upstream = await startUpstream((_req, res) => void res.end('ok'))
  ;({ gateway } = await serveWithWorkers(dir, () => ({
    server: { tls: { cert: pki.server.cert, key: pki.server.key, client_ca: pki.ca.cert, client_crl: crlFile, client_auth: 'optional' } },
    admin: { listen: '127.0.0.1:0', token: ADMIN_TOKEN },
    telemetry: { log_level: 'debug' }, // 'reload staged'
    issuers: [{ name: 'mesh', type: 'x509' }],
    ...allowAnyCaller(['mesh']),
    upstreams: [{ name: 'api', url: upstream.url }],
    routes: [{ id: 'data', path: '/data/*', upstream: 'api', accept: ['client_cert'] }],
  }), { nodeArgs: ['--inspect=127.0.0.1:0'] }))
}, 120_000)

afterAll(async () => {
  await gateway?.stop('SIGKILL')
  await upstream?.close()
  pki?.close()
  await rm(dir, { recursive: true, force: true })
})

/** `n` requests with `cert`, each on a connection of its own (the kernel spreads them over the workers): their statuses, counted. */
async function statusesOf(cert: Issued, n: number): Promise<Record<number, number>> {
  const statuses = await Promise.all(Array.from({ length: n }, () => requestWithCertificate(`${gateway.url}/data/x`, pki, cert).then((res) => res.status)))
  const counted: Record<number, number> = {}
  for (const status of statuses) counted[status] = (counted[status] ?? 0) + 1
  return counted
}

it('refuses a reload during which the CRL was rewritten between two workers\' reads, and holds one CRL on every worker after the next', async () => {
  expect(await statusesOf(later, 12)).toEqual({ 200: 12 })
  const staged = () => (gateway.stderr().match(/"msg":"reload staged"/g) ?? []).length
  // w2's loop is held for 2 s: the reload's stage waits behind it, and w1 prepares at once.
  const w2 = await inspectWorker(gateway.stderr, 'w2')
  try {
    w2.evaluate('console.error("w2 held by the test"); { const t = Date.now(); while (Date.now() - t < 2000); } 1')
    await waitFor(() => gateway.stderr().includes('w2 held by the test'), 'w2 to be held', 20_000)
    const stagedBefore = staged()
    const answer = request(`${gateway.adminUrl}/api/reload`, { method: 'POST', headers: { authorization: `Bearer ${ADMIN_TOKEN}` } }).then((res) => res.body.json())
    await waitFor(() => staged() === stagedBefore + 1, 'w1 to prepare the reload', 20_000)
    // The new CRL lands now: w1 read the one before it, w2 will read it.
    revoke(pki.ca, later)
    writeCrl(pki.ca, crlFile)
    expect(await answer).toEqual({ ok: false, errors: ['the TLS files changed while the workers read them (a certificate or a CRL being renewed): reload again'] })
  } finally {
    w2.close()
  }
  // The CRL's own change (the first worker watches the files) brings the next reload: one CRL everywhere.
  await waitFor(async () => {
    const statuses = await statusesOf(later, 12)
    return statuses[401] === 12
  }, 'every worker to hold the new CRL', 30_000)
}, 90_000)
