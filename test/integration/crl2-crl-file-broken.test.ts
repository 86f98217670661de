// client_crl emptied or removed while the gateway runs (a fetch job that truncates before it writes,
// a secret unmounted): the reload its change starts is refused and says why, and the CRLs loaded
// before keep serving (a revoked certificate stays refused, the others let in); the file put back
// is read again.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, expect, it } from 'vitest'
import { createPki, requestWithCertificate, type Issued, type TestPki } from '../helpers/certs.ts'
import { revoke, writeCrl } from '../helpers/crl.ts'
import { allowAnyCaller, startTestGateway, type TestGateway } from '../helpers/gateway.ts'
import { startUpstream, type TestUpstream } from '../helpers/upstream.ts'
import { waitFor } from '../helpers/wait.ts'

let pki: TestPki
let dir: string
let crlFile: string
let upstream: TestUpstream
let gateway: TestGateway
let certs: Record<'loader' | 'thief', Issued>

beforeAll(async () => {
  pki = createPki()
  dir = mkdtempSync(join(tmpdir(), 'crl2-broken-'))
  certs = {
    loader: pki.ca.issue('crl2-loader', { usage: 'client', san: ['URI:spiffe://prod/crl2/loader'] }),
    thief: pki.ca.issue('crl2-thief', { usage: 'client', san: ['URI:spiffe://prod/crl2/thief'] }),
  }
  revoke(pki.ca, certs.thief)
  crlFile = join(dir, 'client-crl.pem')
  writeCrl(pki.ca, crlFile)
  upstream = await startUpstream()
  gateway = await startTestGateway({
    server: { tls: { cert: pki.server.cert, key: pki.server.key, client_ca: pki.ca.cert, client_crl: crlFile, client_auth: 'optional' } },
    issuers: [{ name: 'mesh', type: 'x509' }],
    ...allowAnyCaller(['mesh']),
    upstreams: [{ name: 'api', url: upstream.url }],
    routes: [{ id: 'data', path: '/data/*', upstream: 'api', accept: ['client_cert'] }],
  })
}, 30_000)

afterAll(async () => {
  await gateway?.close()
  await upstream?.close()
  pki?.close()
  if (dir) rmSync(dir, { recursive: true, force: true })
})

const refusals = () => gateway.logs.filter((line) => line.includes('config reload refused'))
const statuses = async () => ({
  loader: (await requestWithCertificate(`${gateway.url}/data/x`, pki, certs.loader)).status,
  thief: (await requestWithCertificate(`${gateway.url}/data/x`, pki, certs.thief)).status,
})

it('keeps the loaded CRLs when the file is emptied, then removed, and reads it again once it is back', async () => {
  expect(await statuses()).toEqual({ loader: 200, thief: 401 })

  writeFileSync(crlFile, '')
  await waitFor(() => refusals().length === 1, 'the reload of the emptied file to be refused', 15_000)
  expect(refusals()[0]).toContain(`${crlFile} holds no PEM CRL`)
  expect(await statuses()).toEqual({ loader: 200, thief: 401 })

  rmSync(crlFile)
  await waitFor(() => refusals().length === 2, 'the reload of the removed file to be refused', 15_000)
  expect(refusals()[1]).toContain(`cannot read ${crlFile}: no such file`)
  expect(await statuses()).toEqual({ loader: 200, thief: 401 })

  const loaded = gateway.logs.filter((line) => line.includes('config reloaded')).length
  revoke(pki.ca, certs.loader)
  writeCrl(pki.ca, crlFile)
  await waitFor(() => gateway.logs.filter((line) => line.includes('config reloaded')).length > loaded, 'the file put back to be read', 15_000)
  expect(await statuses()).toEqual({ loader: 401, thief: 401 })
}, 60_000)
