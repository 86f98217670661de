// `bouncer serve` picks up server.tls.client_crl on SIGHUP, without a restart: the config is
// rewritten to name another CRL file (a path change no file watch sees), the process is sent SIGHUP,
// and a certificate that CRL revokes is refused from then on, while others still get in.
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, expect, it } from 'vitest'
import { parse, stringify } from 'yaml'
import { createPki, requestWithCertificate, type Issued, type TestPki } from '../helpers/certs.ts'
import { serveConfig, type ServeProcess } from '../helpers/cli.ts'
import { revoke, writeCrl } from '../helpers/crl.ts'
import { allowAnyCaller } from '../helpers/gateway.ts'
import { startUpstream, type TestUpstream } from '../helpers/upstream.ts'
import { waitFor } from '../helpers/wait.ts'

let pki: TestPki
let dir: string
let upstream: TestUpstream
let serve: ServeProcess & { dir: string }
let loader: Issued
let thief: Issued

const config = (crl: string) => ({
  server: { listen: '127.0.0.1:0', tls: { cert: pki.server.cert, key: pki.server.key, client_ca: pki.ca.cert, client_crl: crl } },
  admin: { listen: '127.0.0.1:0' },
  audit: { sinks: [], spill_dir: join(dir, 'spill') },
  issuers: [{ name: 'mesh', type: 'x509' }],
  ...allowAnyCaller(['mesh']),
  upstreams: [{ name: 'api', url: upstream.url }],
  routes: [{ id: 'data', path: '/data/*', upstream: 'api', accept: ['client_cert'] }],
})

beforeAll(async () => {
  pki = createPki()
  dir = mkdtempSync(join(tmpdir(), 'tls3-crl-sighup-'))
  loader = pki.ca.issue('tls3-loader', { usage: 'client', san: ['URI:spiffe://prod/loader'] })
  thief = pki.ca.issue('tls3-thief', { usage: 'client', san: ['URI:spiffe://prod/stolen'] })
  writeCrl(pki.ca, join(dir, 'before.pem'))
  revoke(pki.ca, thief)
  writeCrl(pki.ca, join(dir, 'after.pem'))
  upstream = await startUpstream()
  serve = await serveConfig(config(join(dir, 'before.pem')))
}, 30_000)

afterAll(async () => {
  await serve?.stop()
  await upstream?.close()
  pki?.close()
  if (dir) rmSync(dir, { recursive: true, force: true })
})

it('reads the CRL a SIGHUP reload names', async () => {
  expect((await requestWithCertificate(`${serve.url}/data/x`, pki, thief)).status).toBe(200)
  const file = join(serve.dir, 'bouncer.yaml')
  // serveConfig wrote the listeners' ports in: the rewrite keeps them, and names the other CRL.
  const written = parse(readFileSync(file, 'utf8')) as { server: Record<string, unknown> }
  writeFileSync(file, stringify({ ...written, server: { ...written.server, tls: config(join(dir, 'after.pem')).server.tls } }))
  const reloads = () => serve.stderr().split('\n').filter((line) => line.includes('config reloaded')).length
  serve.child.kill('SIGHUP')
  await waitFor(() => reloads() === 1, 'the SIGHUP reload')
  const refused = await requestWithCertificate(`${serve.url}/data/x`, pki, thief)
  expect(refused.status).toBe(401)
  expect(refused.json().detail).toContain('is revoked: the CRL of "CN=Test CA, O=Bouncer tests"')
  expect((await requestWithCertificate(`${serve.url}/data/x`, pki, loader)).status).toBe(200)
})
