// A CA's CRL past its nextUpdate kept in client_crl beside that CA's current one (a job that
// appends the new CRL, or keeps the last two through a rotation): OpenSSL takes the current one and
// refuses nothing, so `bouncer check` must not say that every certificate of the CA is refused.
// Alone, the stale CRL is still warned of.
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, expect, it } from 'vitest'
import { stringify } from 'yaml'
import { loadConfigText } from '../../src/config/index.ts'
import { createPki, requestWithCertificate, type Issued, type TestPki } from '../helpers/certs.ts'
import { writeCrl, writeCrlBundle } from '../helpers/crl.ts'
import { allowAnyCaller, startTestGateway } from '../helpers/gateway.ts'

let pki: TestPki
let dir: string
let stale: string
let current: string
let loader: Issued
const DAY = 24 * 3_600_000

const config = (crlFile: string) => ({
  server: { tls: { cert: pki.server.cert, key: pki.server.key, client_ca: pki.ca.cert, client_crl: crlFile, client_auth: 'optional' } },
  issuers: [{ name: 'mesh', type: 'x509' }],
  ...allowAnyCaller(['mesh']),
  upstreams: [{ name: 'api', url: 'http://127.0.0.1:9' }],
  routes: [{ id: 'data', path: '/data/*', upstream: 'api', accept: ['client_cert'] }],
})
const diagnostics = (crlFile: string) => loadConfigText(stringify(config(crlFile)), join(dir, 'check.yaml')).diagnostics.map((d) => `${d.severity} ${d.path.join('.')}: ${d.message}`)

beforeAll(() => {
  pki = createPki()
  dir = mkdtempSync(join(tmpdir(), 'crl2-stale-'))
  loader = pki.ca.issue('crl2-loader', { usage: 'client', san: ['URI:spiffe://prod/crl2/loader'] })
  stale = writeCrl(pki.ca, join(dir, 'stale.crl'), { thisUpdate: new Date(Date.now() - 3 * DAY), nextUpdate: new Date(Date.now() - 2 * DAY) })
  current = writeCrl(pki.ca, join(dir, 'current.crl'))
})

afterAll(() => {
  pki?.close()
  if (dir) rmSync(dir, { recursive: true, force: true })
})

it('no warning for a stale CRL its CA has a current one beside, before or after it; the handshake takes the current one', async () => {
  const before = writeCrlBundle(join(dir, 'stale-first.pem'), [stale, current])
  const after = writeCrlBundle(join(dir, 'stale-last.pem'), [current, stale])
  expect({ before: diagnostics(before), after: diagnostics(after) }).toEqual({ before: [], after: [] })
  // What check says is what the handshake does: the CA's certificates are let in.
  const gateway = await startTestGateway(config(before))
  try {
    const res = await requestWithCertificate(`${gateway.url}/data/x`, pki, loader)
    expect(res.status).toBe(502) // past authentication: the upstream (a closed port) answers no more
  } finally {
    await gateway.close()
  }
}, 20_000)

it('still warns of a stale CRL that is its CA\'s only one', () => {
  const alone = writeCrlBundle(join(dir, 'stale-alone.pem'), [stale])
  expect(diagnostics(alone)).toEqual([expect.stringMatching(/^warning server\.tls\.client_crl: the CRL of "CN=Test CA, O=Bouncer tests" in .* is out of date: /)])
})
