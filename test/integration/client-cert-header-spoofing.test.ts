// RFC 9440's Client-Cert and Client-Cert-Chain carry, from the proxy that terminated TLS, the
// certificate it checked; an origin believes them from that proxy alone (§3). With client
// certificates the gateway is that proxy, yet a probe found a client's own `Client-Cert` (beside a
// certificate of its own, or none) reaching the upstream as sent: an upstream reading it took the
// client's word for a certificate the gateway never saw. They are removed now, with their
// look-alikes, like X-Forwarded-Client-Cert (in the X-Forwarded-* family) already was.
import { readFileSync } from 'node:fs'
import { Agent, request } from 'undici'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { createPki, type Issued, type TestPki } from '../helpers/certs.ts'
import { startTestGateway, type TestGateway } from '../helpers/gateway.ts'
import { startUpstream, type Received, type TestUpstream } from '../helpers/upstream.ts'

let pki: TestPki
let upstream: TestUpstream
let gateway: TestGateway
let loader: Issued

beforeAll(async () => {
  pki = createPki()
  loader = pki.ca.issue('loader', { usage: 'client', san: ['URI:spiffe://prod/ns/etl/sa/loader'] })
  upstream = await startUpstream()
  gateway = await startTestGateway({
    server: { trusted_proxies: ['127.0.0.1/32'], tls: { cert: pki.server.cert, key: pki.server.key, client_ca: pki.ca.cert, client_auth: 'optional' } },
    issuers: [{ name: 'mesh', type: 'x509', ca: pki.ca.cert }],
    roles: [{ name: 'etl', assumed_by: [{ issuer: 'mesh', subject: 'spiffe://prod/ns/etl/*' }], policies: ['read'] }],
    policies: [{ name: 'read', statements: [{ sid: 'Read', effect: 'allow', actions: ['GET'], routes: ['data'] }] }],
    upstreams: [{ name: 'api', url: upstream.url }],
    routes: [
      { id: 'data', path: '/data/*', upstream: 'api', accept: ['client_cert'] },
      { id: 'open', path: '/open', upstream: 'api', public: true },
    ],
  })
})

afterAll(async () => {
  await gateway?.close()
  await upstream?.close()
  pki?.close()
})

/** A forged certificate header of each spelling a proxy or framework reads. */
const FORGED = {
  'client-cert': ':MIIBforged:',
  'client-cert-chain': ':MIIBforgedchain:',
  client_cert: ':MIIBlookalike:',
  'x-forwarded-client-cert': 'By=spiffe://prod/ns/gateway;URI=spiffe://prod/ns/admin/sa/root',
}

async function sent(path: string, cert: Issued | null): Promise<Received> {
  const agent = new Agent({ connect: { ca: readFileSync(pki.ca.cert), servername: 'localhost', ...(cert ? { cert: readFileSync(cert.cert), key: readFileSync(cert.key) } : {}) } })
  try {
    const res = await request(`${gateway.url}${path}`, { dispatcher: agent, headers: FORGED })
    const body = (await res.body.json()) as Received
    expect(res.statusCode, JSON.stringify(body)).toBe(200)
    return body
  } finally {
    await agent.close()
  }
}

describe('client certificate headers from the client', () => {
  for (const [what, path, cert] of [['beside a certificate', '/data/x', 'loader'], ['with no certificate, on a public route', '/open', null]] as const) {
    it(`never reach the upstream (${what})`, async () => {
      const received = await sent(path, cert === null ? null : loader)
      const names = Object.keys(received.headers)
      expect(names.filter((name) => /client.cert/.test(name))).toEqual([])
    })
  }
})
