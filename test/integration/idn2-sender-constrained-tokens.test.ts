// A sender-constrained access token is not a bearer token: found by the identity probe, a token
// whose `cnf` binds it to its holder's key — a DPoP key (cnf.jkt, RFC 9449) or a client
// certificate (cnf.x5t#S256, RFC 8705) — was taken as a plain bearer token, so whoever stole one
// (the very theft binding exists to make useless) was let in with it. A DPoP-bound token is sent
// with the DPoP scheme, which the gateway does not take (RFC 9449 §7.1): as Bearer it is refused. A
// certificate-bound one counts only over a connection that presents that certificate (RFC 8705 §3),
// on every request, cached verification or not. Any other binding (cnf.jwk…) is one the gateway
// cannot check: refused too.
import { createHash, X509Certificate } from 'node:crypto'
import { readFileSync } from 'node:fs'
import { Agent, request } from 'undici'
import { afterAll, beforeAll, expect, it } from 'vitest'
import { createPki, type Issued, type TestPki } from '../helpers/certs.ts'
import { allowAnyCaller, startTestGateway, type TestGateway } from '../helpers/gateway.ts'
import { AUDIENCE, startIdentityProvider, type TestIdentityProvider } from '../helpers/identity-provider.ts'
import { startUpstream, type TestUpstream } from '../helpers/upstream.ts'
import { waitFor } from '../helpers/wait.ts'

let pki: TestPki
let idp: TestIdentityProvider
let upstream: TestUpstream
let plain: TestGateway
let tls: TestGateway
let mine: Issued
let other: Issued

function config(server: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    server,
    issuers: [{ name: 'corp', issuer: idp.issuer, audiences: [AUDIENCE] }],
    ...allowAnyCaller(['corp']),
    upstreams: [{ name: 'api', url: upstream.url }],
    routes: [{ id: 'api', path: '/*', upstream: 'api' }],
  }
}

beforeAll(async () => {
  pki = createPki()
  mine = pki.ca.issue('agent', { usage: 'client' })
  other = pki.ca.issue('someone-else', { usage: 'client' })
  idp = await startIdentityProvider()
  upstream = await startUpstream()
  plain = await startTestGateway(config())
  tls = await startTestGateway(config({ tls: { cert: pki.server.cert, key: pki.server.key, client_ca: pki.ca.cert, client_auth: 'optional' } }))
  await waitFor(() => [plain, tls].every((gw) => gw.state.runtime.issuerKeys.get('corp')?.state === 'ready'), 'the issuer keys')
}, 60_000)

afterAll(async () => {
  await plain?.close()
  await tls?.close()
  await upstream?.close()
  await idp?.stop()
  pki?.close()
})

function thumbprint(cert: Issued): string {
  return createHash('sha256').update(new X509Certificate(readFileSync(cert.cert)).raw).digest('base64url')
}

async function call(gateway: TestGateway, token: string, cert: Issued | null = null): Promise<{ status: number; code?: string }> {
  const agent = new Agent({ connect: { ca: readFileSync(pki.ca.cert), servername: 'localhost', ...(cert ? { cert: readFileSync(cert.cert), key: readFileSync(cert.key) } : {}) } })
  try {
    const res = await request(`${gateway.url}/x`, { dispatcher: agent, headers: { authorization: `Bearer ${token}` } })
    const text = await res.body.text()
    return { status: res.statusCode, code: res.statusCode === 200 ? undefined : (JSON.parse(text) as { code?: string }).code }
  } finally {
    await agent.close()
  }
}

it('refuses a DPoP-bound token sent as a bearer token, and a binding it cannot check', async () => {
  expect(await call(plain, await idp.mint({}))).toEqual({ status: 200 })
  const dpop = await idp.mint({ cnf: { jkt: '0ZcOCORZNYy-DWpqq30jZyJGHTN0d2HglBV3uiguA4I' } })
  expect(await call(plain, dpop)).toEqual({ status: 401, code: 'malformed_token' })
  expect(await call(tls, dpop, mine)).toEqual({ status: 401, code: 'malformed_token' })
  expect(await call(plain, await idp.mint({ cnf: { jwk: { kty: 'EC', crv: 'P-256', x: 'a', y: 'b' } } }))).toEqual({ status: 401, code: 'malformed_token' })
  expect(await call(plain, await idp.mint({ cnf: 'bound' }))).toEqual({ status: 401, code: 'malformed_token' })
})

it('takes a certificate-bound token only over a connection presenting that certificate, each time', async () => {
  const bound = await idp.mint({ cnf: { 'x5t#S256': thumbprint(mine) } })
  expect(await call(tls, bound, mine)).toEqual({ status: 200 })
  // The same token, now verified and cached, from connections without the certificate.
  expect(await call(tls, bound, other)).toEqual({ status: 401, code: 'client_cert_required' })
  expect(await call(tls, bound, null)).toEqual({ status: 401, code: 'client_cert_required' })
  expect(await call(plain, bound)).toEqual({ status: 401, code: 'client_cert_required' })
  expect(await call(tls, bound, mine)).toEqual({ status: 200 })
})
