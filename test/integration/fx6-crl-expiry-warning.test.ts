// A client CRL whose nextUpdate passes while the gateway runs: from then on OpenSSL refuses every
// certificate its CA signed (CRL_HAS_EXPIRED). What operators see: /metrics says until when each
// CA's CRL is current (bouncer_tls_client_crl_expiry_timestamp_seconds), the log warns once when it
// is due within a day and once when it has passed (its own timer, no request needed), and a reload
// that loads the same stale CRL says so again.
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, expect, it } from 'vitest'
import { createPki, requestWithCertificate, type Issued, type TestPki } from '../helpers/certs.ts'
import { writeCrl } from '../helpers/crl.ts'
import { allowAnyCaller, startTestGateway, type TestGateway } from '../helpers/gateway.ts'
import { startUpstream, type TestUpstream } from '../helpers/upstream.ts'
import { metricValue, waitFor } from '../helpers/wait.ts'

let pki: TestPki
let dir: string
let upstream: TestUpstream
let gateway: TestGateway
let loader: Issued
let nextUpdate: Date

const ISSUER = 'CN=Test CA, O=Bouncer tests'
const SERIES = `bouncer_tls_client_crl_expiry_timestamp_seconds{issuer="${ISSUER}"}`

const warnings = (msg: string) => gateway.logs.map((line) => JSON.parse(line) as Record<string, unknown>).filter((line) => line.level === 'warn' && String(line.msg).includes(msg))

beforeAll(async () => {
  pki = createPki()
  dir = mkdtempSync(join(tmpdir(), 'fx6-crl-expiry-'))
  loader = pki.ca.issue('fx6-loader', { usage: 'client', san: ['URI:spiffe://prod/loader'] })
  // Whole seconds, as a CRL's time is written: a few ahead, so that it passes during the test.
  nextUpdate = new Date(Math.ceil(Date.now() / 1000) * 1000 + 3_000)
  writeCrl(pki.ca, join(dir, 'crl.pem'), { nextUpdate })
  upstream = await startUpstream()
  gateway = await startTestGateway({
    server: { tls: { cert: pki.server.cert, key: pki.server.key, client_ca: pki.ca.cert, client_crl: join(dir, 'crl.pem'), client_auth: 'optional' } },
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

it('says when a client CRL goes out of date, before and when it happens, in the log and in /metrics', async () => {
  expect(await metricValue(gateway.adminUrl, SERIES)).toBe(nextUpdate.getTime() / 1000)
  // Loaded with less than a day to go: warned at once, with whose CRL and until when.
  const soon = warnings('client CRL goes out of date within a day')
  expect(soon).toHaveLength(1)
  expect(soon[0]).toMatchObject({ issuer: ISSUER, next_update: nextUpdate.toISOString() })
  expect((await requestWithCertificate(`${gateway.url}/data/x`, pki, loader)).status).toBe(200)

  // It passes with no request and no reload: the gateway's own timer sees it.
  await waitFor(() => warnings('client CRL is out of date').length > 0, 'the out-of-date warning')
  expect(warnings('client CRL is out of date')[0]).toMatchObject({ issuer: ISSUER, next_update: nextUpdate.toISOString() })
  const refused = await requestWithCertificate(`${gateway.url}/data/x`, pki, loader)
  expect(refused.status).toBe(401)
  expect(refused.json().detail).toContain('out of date')
  // The series stays, now in the past: an alert on `< time()` keeps firing until a new CRL is in.
  expect(await metricValue(gateway.adminUrl, SERIES)).toBe(nextUpdate.getTime() / 1000)

  // Once per CRL: a second look of the timer does not warn again.
  await waitFor(() => Date.now() > nextUpdate.getTime() + 1_000, 'a second past nextUpdate')
  expect(warnings('client CRL is out of date')).toHaveLength(1)
  expect(warnings('client CRL goes out of date within a day')).toHaveLength(1)

  // A reload that loads the same stale CRL says so again (the config's own warning, logged by the reload).
  const before = gateway.logs.length
  expect((await gateway.reload()).ok).toBe(true)
  const again = gateway.logs.slice(before).map((line) => JSON.parse(line) as Record<string, unknown>).filter((line) => line.level === 'warn' && String(line.msg).includes(`the CRL of "${ISSUER}"`) && String(line.msg).includes('is out of date'))
  expect(again).toHaveLength(1)
  // Not twice: the timer's line is for a CRL that passes while loaded.
  expect(warnings('client CRL is out of date')).toHaveLength(1)
}, 20_000)
