// A client certificate's subject is its URI SAN (a SPIFFE ID), else its CN. A CN is free text that a
// CA copies from the request, so a probe got a certificate with no SAN and CN=spiffe://prod/ns/etl/sa/admin
// taken for that SVID's workload: the same sub, the role its glob grants, the same assertion and audit
// subject. A CN written as a URI is refused now (401 client_cert_required, saying why); a URI SAN and a
// plain CN are taken as before.
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { createPki, requestWithCertificate, type Issued, type TestPki } from '../helpers/certs.ts'
import { startTestGateway, type TestGateway } from '../helpers/gateway.ts'
import { startUpstream, type TestUpstream } from '../helpers/upstream.ts'

let pki: TestPki
let upstream: TestUpstream
let gateway: TestGateway

beforeAll(async () => {
  pki = createPki()
  upstream = await startUpstream()
  gateway = await startTestGateway({
    server: { tls: { cert: pki.server.cert, key: pki.server.key, client_ca: pki.ca.cert, client_auth: 'optional' } },
    issuers: [{ name: 'mesh', type: 'x509', ca: pki.ca.cert }],
    roles: [{ name: 'etl', assumed_by: [{ issuer: 'mesh', subject: 'spiffe://prod/ns/etl/*' }, { issuer: 'mesh', subject: 'batch-*' }], policies: ['read'] }],
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

async function get(cert: Issued): Promise<{ status: number; body: Record<string, unknown> }> {
  const res = await requestWithCertificate(`${gateway.url}/data/x`, pki, cert)
  return { status: res.status, body: res.json() }
}

describe('a CN that looks like a URI', () => {
  it('is refused: a SPIFFE ID counts only as a URI SAN', async () => {
    // openssl -subj takes `/` as the separator of attributes: escaped inside the value.
    const cnUri = pki.ca.issue('cn-uri', { usage: 'client', subject: '/CN=spiffe:\\/\\/prod\\/ns\\/etl\\/sa\\/admin' })
    const answer = await get(cnUri)
    expect(answer.status, JSON.stringify(answer.body)).toBe(401)
    expect(answer.body).toMatchObject({ code: 'client_cert_required', detail: expect.stringMatching(/as a URI in its CN/) })
    expect(upstream.received).toHaveLength(0)
  })

  it('leaves a URI SAN and a plain CN as they were', async () => {
    expect((await get(pki.ca.issue('svid', { usage: 'client', san: ['URI:spiffe://prod/ns/etl/sa/admin'] }))).status).toBe(200)
    expect((await get(pki.ca.issue('batch', { usage: 'client', subject: '/CN=batch-nightly:eu/O=Example' }))).status).toBe(200)
  })
})
