// RFC 9110 §11.6.1: a 401 names a scheme the client may answer with. On a route that takes a client
// certificate or a bearer token (accept: [client_cert, bearer]), a probe found a request with
// neither answered 401 client_cert_required with no WWW-Authenticate at all, though a token would
// be taken — as a session's refusal was before the same fix for sessions. It carries `Bearer` now.
// A certificate presented decides (a token beside it is not taken), so its refusal names none, and
// a route that takes certificates only has no HTTP challenge to name.
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
    issuers: [{ name: 'mesh', type: 'x509', ca: pki.ca.cert }, { name: 'corp', issuer: 'https://sso.example.com/', audiences: ['api://bouncer'], jwks_uri: 'http://127.0.0.1:1/keys' }],
    roles: [{ name: 'etl', assumed_by: [{ issuer: 'mesh', subject: 'spiffe://prod/*' }], policies: ['read'] }],
    policies: [{ name: 'read', statements: [{ sid: 'Read', effect: 'allow', actions: ['GET'], routes: ['*'] }] }],
    upstreams: [{ name: 'api', url: upstream.url }],
    routes: [
      { id: 'either', path: '/either/*', upstream: 'api', accept: ['client_cert', 'bearer'] },
      { id: 'certs', path: '/certs/*', upstream: 'api', accept: ['client_cert'] },
    ],
  })
})

afterAll(async () => {
  await gateway?.close()
  await upstream?.close()
  pki?.close()
})

async function refusal(path: string, cert: Issued | null): Promise<{ status: number; code: unknown; challenge: unknown }> {
  const res = await requestWithCertificate(`${gateway.url}${path}`, pki, cert)
  return { status: res.status, code: res.json().code, challenge: res.headers['www-authenticate'] ?? null }
}

describe('401 client_cert_required and WWW-Authenticate', () => {
  it('names Bearer where the route also takes a bearer token and the connection presented no certificate', async () => {
    expect(await refusal('/either/x', null)).toEqual({ status: 401, code: 'client_cert_required', challenge: 'Bearer' })
  })

  it('names none where a certificate was presented, or the route takes certificates only', async () => {
    const expired = pki.ca.issue('expired', { usage: 'client', san: ['URI:spiffe://prod/old'], notBefore: '20200101000000Z', notAfter: '20200102000000Z' })
    expect(await refusal('/either/x', expired)).toEqual({ status: 401, code: 'client_cert_required', challenge: null })
    expect(await refusal('/certs/x', null)).toEqual({ status: 401, code: 'client_cert_required', challenge: null })
  })
})
