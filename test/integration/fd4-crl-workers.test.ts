// server.tls.client_crl with server.workers: 2. Each worker holds its own TLS context and its own
// compiled CRLs, and only the first watches the files: a revoked certificate must be refused by
// every worker (connections of their own, spread by the kernel), and a CRL rewritten on disk must
// reach every worker, not only the one that saw it change.
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, expect, it } from 'vitest'
import { createPki, requestWithCertificate, type Issued, type TestPki } from '../helpers/certs.ts'
import type { ServeProcess } from '../helpers/cli.ts'
import { revoke, writeCrl } from '../helpers/crl.ts'
import { allowAnyCaller } from '../helpers/gateway.ts'
import { startUpstream, type TestUpstream } from '../helpers/upstream.ts'
import { waitFor } from '../helpers/wait.ts'
import { serveWithWorkers } from '../helpers/workers.ts'

let dir: string
let pki: TestPki
let upstream: TestUpstream
let gateway: ServeProcess
let crlFile: string
let certs: Record<'loader' | 'thief' | 'later', Issued>

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'fd4-crl-workers-'))
  pki = createPki()
  certs = {
    loader: pki.ca.issue('fd4-loader', { usage: 'client', san: ['URI:spiffe://prod/fd4/loader'] }),
    thief: pki.ca.issue('fd4-thief', { usage: 'client', san: ['URI:spiffe://prod/fd4/thief'] }),
    later: pki.ca.issue('fd4-later', { usage: 'client', san: ['URI:spiffe://prod/fd4/later'] }),
  }
  crlFile = join(dir, 'client-crl.pem')
  revoke(pki.ca, certs.thief)
  writeCrl(pki.ca, crlFile)
  upstream = await startUpstream((_req, res) => void res.end('ok'))
  ;({ gateway } = await serveWithWorkers(dir, () => ({
    server: { tls: { cert: pki.server.cert, key: pki.server.key, client_ca: pki.ca.cert, client_crl: crlFile, client_auth: 'optional' } },
    issuers: [{ name: 'mesh', type: 'x509' }],
    ...allowAnyCaller(['mesh']),
    upstreams: [{ name: 'api', url: upstream.url }],
    routes: [{ id: 'data', path: '/data/*', upstream: 'api', accept: ['client_cert'] }],
  })))
}, 120_000)

afterAll(async () => {
  await gateway?.stop('SIGKILL')
  await upstream?.close()
  pki?.close()
  await rm(dir, { recursive: true, force: true })
})

/** `n` requests, each on a connection of its own (the kernel spreads them over both workers): their statuses, counted. */
async function statusesOf(cert: Issued, n: number): Promise<Record<number, number>> {
  const statuses = await Promise.all(Array.from({ length: n }, () => requestWithCertificate(`${gateway.url}/data/x`, pki, cert).then((res) => res.status)))
  const counted: Record<number, number> = {}
  for (const status of statuses) counted[status] = (counted[status] ?? 0) + 1
  return counted
}

/** "TLS certificate loaded" lines each worker logged (once at start, once per reload applied). */
function loadsOf(worker: string): number {
  return gateway.stderr().split('\n').filter((line) => line.includes(`"worker":"${worker}"`) && line.includes('TLS certificate loaded')).length
}

it('refuses a revoked certificate on every worker, and lets the others in on every worker', async () => {
  expect(await statusesOf(certs.thief, 24)).toEqual({ 401: 24 })
  expect(await statusesOf(certs.later, 24)).toEqual({ 200: 24 })
}, 30_000)

it('brings a CRL rewritten on disk to every worker, not only the one watching the file', async () => {
  const before = { w1: loadsOf('w1'), w2: loadsOf('w2') }
  revoke(pki.ca, certs.later)
  writeCrl(pki.ca, crlFile)
  await waitFor(() => loadsOf('w1') > before.w1 && loadsOf('w2') > before.w2, 'both workers to read the new CRL', 20_000)
  expect({ later: await statusesOf(certs.later, 24), loader: await statusesOf(certs.loader, 24) }).toEqual({ later: { 401: 24 }, loader: { 200: 24 } })
}, 40_000)
