// Found by a review (stop 36's left-out list): with server.workers each worker reads the TLS files
// while it prepares a reload, so a renewal written between two of them installed two certificates,
// one per worker. The workers now say which certificate they prepared, and a reload whose workers
// read different ones is refused; the renewal's own change asks for the next.
import { X509Certificate } from 'node:crypto'
import { copyFileSync, readFileSync } from 'node:fs'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { connect } from 'node:tls'
import { request } from 'undici'
import { afterAll, beforeAll, expect, it } from 'vitest'
import { createPki, type TestPki } from '../helpers/certs.ts'
import type { ServeProcess } from '../helpers/cli.ts'
import { inspectWorker } from '../helpers/inspector.ts'
import { startUpstream, type TestUpstream } from '../helpers/upstream.ts'
import { waitFor } from '../helpers/wait.ts'
import { serveWithWorkers } from '../helpers/workers.ts'

const ADMIN_TOKEN = 'workers-tls-renewal-admin-token-0123'
let dir: string
let pki: TestPki
let upstream: TestUpstream
let gateway: ServeProcess

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'bouncer-workers-tls-renewal-'))
  pki = createPki()
  copyFileSync(pki.server.cert, join(dir, 'cert.pem'))
  copyFileSync(pki.server.key, join(dir, 'key.pem'))
  upstream = await startUpstream((_req, res) => void res.end('ok'))
  ;({ gateway } = await serveWithWorkers(dir, () => ({
    server: { tls: { cert: join(dir, 'cert.pem'), key: join(dir, 'key.pem') } },
    admin: { listen: '127.0.0.1:0', token: ADMIN_TOKEN },
    telemetry: { log_level: 'debug' },
    upstreams: [{ name: 'api', url: upstream.url }],
    routes: [{ id: 'open', path: '/open', upstream: 'api', public: true }],
  }), { nodeArgs: ['--inspect=127.0.0.1:0'] }))
}, 120_000)

afterAll(async () => {
  await gateway?.stop('SIGKILL')
  await upstream?.close()
  pki?.close()
  await rm(dir, { recursive: true, force: true })
})

/** The certificate a new connection is served (each its own connection: the kernel picks a worker). */
function served(): Promise<string> {
  const { port } = new URL(gateway.url)
  return new Promise((resolve, reject) => {
    const socket = connect({ host: '127.0.0.1', port: Number(port), ca: readFileSync(pki.ca.cert), servername: 'localhost' }, () => {
      resolve(socket.getPeerX509Certificate()?.fingerprint256 ?? '')
      socket.destroy()
    })
    socket.once('error', reject)
  })
}

it('refuses a reload during which the certificate was renewed between two workers\' reads, and serves one certificate after the next', async () => {
  const renewed = pki.ca.issue('renewed', { usage: 'server', san: ['DNS:localhost', 'IP:127.0.0.1'] })
  const after = new X509Certificate(readFileSync(renewed.cert)).fingerprint256
  const staged = () => (gateway.stderr().match(/"msg":"reload staged"/g) ?? []).length

  // w2's loop is held for 2 s: the reload's stage waits behind it, and w1 prepares at once.
  const w2 = await inspectWorker(gateway.stderr, 'w2')
  try {
    w2.evaluate('console.error("w2 held by the test"); { const t = Date.now(); while (Date.now() - t < 2000); } 1')
    await waitFor(() => gateway.stderr().includes('w2 held by the test'), 'w2 to be held', 20_000)
    const stagedBefore = staged()
    const answer = request(`${gateway.adminUrl}/api/reload`, { method: 'POST', headers: { authorization: `Bearer ${ADMIN_TOKEN}` } }).then((res) => res.body.json())
    await waitFor(() => staged() === stagedBefore + 1, 'w1 to prepare the reload', 20_000)
    // The renewal lands now: w1 read the certificate before it, w2 will read it after.
    copyFileSync(renewed.key, join(dir, 'key.pem'))
    copyFileSync(renewed.cert, join(dir, 'cert.pem'))
    expect(await answer).toEqual({ ok: false, errors: ['the TLS files changed while the workers read them (a certificate being renewed): reload again'] })
  } finally {
    w2.close()
  }
  // The renewal's own change (the first worker watches the files) or the operator's next reload: one certificate.
  await waitFor(async () => (await Promise.all(Array.from({ length: 20 }, served))).every((fingerprint) => fingerprint === after), 'every worker to serve the renewed certificate', 30_000)
}, 90_000)
