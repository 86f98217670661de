// Found by an adversarial probe (helper). Forward-auth (/.bouncer/auth) asks about the request a trusted proxy describes. The credentials of
// that request are the ones the proxy forwards (headers); the TLS client certificate on the
// connection is the *proxy's* own. A route accepting client_cert must not authorize an anonymous
// end user as the proxy's workload identity.
import { readFileSync } from 'node:fs'
import { Agent, request } from 'undici'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { createPki, type Issued, type TestPki } from '../helpers/certs.ts'
import { startTestGateway, type TestGateway } from '../helpers/gateway.ts'
import { startUpstream, type TestUpstream } from '../helpers/upstream.ts'

let pki: TestPki
let ca: Buffer
let upstream: TestUpstream
let gateway: TestGateway
let proxyCert: Issued

beforeAll(async () => {
  pki = createPki()
  ca = readFileSync(pki.ca.cert)
  proxyCert = pki.ca.issue('edge-proxy', { usage: 'client', san: ['URI:spiffe://prod/ns/edge/sa/envoy'] })
  upstream = await startUpstream()
  gateway = await startTestGateway({
    server: { trusted_proxies: ['127.0.0.1/32'], forward_auth_peers: ['127.0.0.1/32'], tls: { cert: pki.server.cert, key: pki.server.key, client_ca: pki.ca.cert, client_auth: 'optional' } },
    issuers: [{ name: 'mesh', type: 'x509', ca: pki.ca.cert }],
    roles: [{ name: 'workloads', assumed_by: [{ issuer: 'mesh', subject: 'spiffe://prod/*' }], policies: ['read'] }],
    policies: [{ name: 'read', statements: [{ sid: 'Read', effect: 'allow', actions: ['GET'], routes: ['data'] }] }],
    upstreams: [{ name: 'api', url: upstream.url, identity_assertion: true, headers: { 'X-Upstream-Secret': 'only-the-gateway-holds-this' } }],
    routes: [{ id: 'data', path: '/data/*', upstream: 'api', accept: ['client_cert'] }],
  })
})

afterAll(async () => {
  await gateway?.close()
  await upstream?.close()
  pki?.close()
})

describe('forward-auth and client certificates', () => {
  it('an anonymous end user described by an mTLS proxy is not authorized as the proxy\'s certificate identity', async () => {
    const agent = new Agent({ connect: { ca, servername: 'localhost', cert: readFileSync(proxyCert.cert), key: readFileSync(proxyCert.key) } })
    try {
      // The proxy describes an end user's GET /data/secret that carried no credential at all.
      const res = await request(`${gateway.url}/.bouncer/auth`, { dispatcher: agent, headers: { 'x-original-method': 'GET', 'x-original-uri': '/data/secret' } })
      const text = await res.body.text()
      expect({ status: res.statusCode, upstreamSecret: res.headers['x-upstream-secret'] ?? null }, text).toEqual({ status: 401, upstreamSecret: null })
      expect(JSON.parse(text)).toMatchObject({ code: 'client_cert_required' })
      // The same certificate on a request of its own is the workload it names.
      const direct = await request(`${gateway.url}/data/secret`, { dispatcher: agent })
      await direct.body.dump()
      expect(direct.statusCode).toBe(200)
    } finally {
      await agent.close()
    }
  })
})
