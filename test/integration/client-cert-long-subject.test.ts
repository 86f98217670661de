// A client certificate's URI SAN has no length of its own. A probe presented one of 20,000
// characters: it was taken as the subject, and went upstream in X-Bouncer-Assertion, a header past
// what the upstream takes — the client got the upstream's 431, recorded as an allow. A workload
// identity is bounded now by the SPIFFE ID's own bound (2048 bytes): a longer name is refused,
// 401 client_cert_required, before anything is sent; one of 2048 bytes is served whole.
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { createPki, requestWithCertificate, type Issued, type TestPki } from '../helpers/certs.ts'
import { startTestGateway, type TestGateway } from '../helpers/gateway.ts'
import { startUpstream, type TestUpstream } from '../helpers/upstream.ts'

const PREFIX = 'spiffe://prod/ns/etl/sa/'

let pki: TestPki
let upstream: TestUpstream
let gateway: TestGateway

beforeAll(async () => {
  pki = createPki()
  upstream = await startUpstream()
  gateway = await startTestGateway({
    server: { tls: { cert: pki.server.cert, key: pki.server.key, client_ca: pki.ca.cert, client_auth: 'optional' } },
    issuers: [{ name: 'mesh', type: 'x509' }],
    roles: [{ name: 'etl', assumed_by: [{ issuer: 'mesh', subject: `${PREFIX}*` }], policies: ['read'] }],
    policies: [{ name: 'read', statements: [{ sid: 'Read', effect: 'allow', actions: ['GET'], routes: ['data'] }] }],
    upstreams: [{ name: 'api', url: upstream.url, identity_assertion: true }],
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

const named = (bytes: number) => pki.ca.issue(`long-${bytes}`, { usage: 'client', san: [`URI:${PREFIX}${'a'.repeat(bytes - PREFIX.length)}`] })

describe('a client certificate naming a very long workload', () => {
  it('is refused past 2048 bytes, and nothing goes upstream', async () => {
    const answer = await get(named(20_000))
    expect(answer).toMatchObject({ status: 401, body: { code: 'client_cert_required', detail: expect.stringMatching(/of 20000 bytes: a workload identity is at most 2048/) } })
    expect(upstream.received).toHaveLength(0)
  })

  it('is served whole at 2048 bytes', async () => {
    const answer = await get(named(2048))
    expect(answer.status).toBe(200)
    const assertion = (answer.body.headers as Record<string, string>)['x-bouncer-assertion'] as string
    const claims = JSON.parse(Buffer.from(assertion.split('.')[1] as string, 'base64url').toString('utf8')) as { sub: string }
    expect(claims.sub).toHaveLength(2048)
  })
})
