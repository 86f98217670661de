// The TLS files are read again when they change on disk, as on SIGHUP — server.tls's cert, key and
// client_ca were watched, but not the x509 issuers' `ca` files, read by the same reload. A probe took
// a CA out of an issuer's ca file (cutting that CA's workloads off) and its certificates kept
// authenticating as the issuer's until someone sent SIGHUP. The issuers' ca files are watched too now.
import { readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { createPki, requestWithCertificate, type Issued, type TestCa, type TestPki } from '../helpers/certs.ts'
import { startTestGateway, type TestGateway } from '../helpers/gateway.ts'
import { startUpstream, type TestUpstream } from '../helpers/upstream.ts'
import { waitFor } from '../helpers/wait.ts'

let pki: TestPki
let partnerCa: TestCa
let upstream: TestUpstream
let gateway: TestGateway
let meshFile: string

beforeAll(async () => {
  pki = createPki()
  partnerCa = pki.newCa('Partner CA')
  const clientCa = join(pki.dir, 'client-ca.pem')
  writeFileSync(clientCa, readFileSync(pki.ca.cert, 'utf8') + readFileSync(partnerCa.cert, 'utf8'))
  meshFile = join(pki.dir, 'mesh-ca.pem')
  writeFileSync(meshFile, readFileSync(pki.ca.cert))
  upstream = await startUpstream()
  gateway = await startTestGateway({
    server: { tls: { cert: pki.server.cert, key: pki.server.key, client_ca: clientCa, client_auth: 'optional' } },
    issuers: [{ name: 'mesh', type: 'x509', ca: meshFile }],
    roles: [{ name: 'workloads', assumed_by: [{ issuer: 'mesh', subject: 'spiffe://*' }], policies: ['read'] }],
    policies: [{ name: 'read', statements: [{ sid: 'Read', effect: 'allow', actions: ['GET'], routes: ['data'] }] }],
    upstreams: [{ name: 'api', url: upstream.url }],
    routes: [{ id: 'data', path: '/data/*', upstream: 'api', accept: ['client_cert'] }],
  })
})

afterAll(async () => {
  await gateway?.close()
  await upstream?.close()
  pki?.close()
})

/** A new connection each time: what a reload changes is read by the next handshake's requests. */
async function get(cert: Issued): Promise<{ status: number; body: Record<string, unknown> }> {
  const res = await requestWithCertificate(`${gateway.url}/data/x`, pki, cert)
  return { status: res.status, body: res.json() }
}

describe('an x509 issuer\'s ca file changed on disk', () => {
  it('is read again, as on SIGHUP: a CA taken out of it no longer vouches', async () => {
    const loader = pki.ca.issue('loader', { usage: 'client', san: ['URI:spiffe://prod/ns/etl/sa/loader'] })
    expect((await get(loader)).status).toBe(200)
    const reloads = () => gateway.logs.filter((line) => line.includes('"config reloaded"')).length
    const before = reloads()
    writeFileSync(meshFile, readFileSync(partnerCa.cert)) // mesh now vouches for the partner's CA only
    await waitFor(() => reloads() > before, 'a reload after the issuer\'s ca file changed', 10_000)
    expect(await get(loader)).toMatchObject({ status: 401, body: { code: 'client_cert_required', detail: expect.stringMatching(/no x509 issuer's ca names/) } })
    expect((await get(partnerCa.issue('partner', { usage: 'client', san: ['URI:spiffe://partner/x'] }))).status).toBe(200)
  })
})
