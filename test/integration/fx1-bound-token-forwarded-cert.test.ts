// Confirmed by a probe: a certificate-bound access token (cnf.x5t#S256, RFC 8705) was refused behind
// a load balancer that terminates TLS (server.forwarded_client_cert): the bearer check looked only
// at the connection's own certificate, which there is none of (or the proxy's own), while the
// client's came in RFC 9440's Client-Cert field from a trusted proxy, as a client_cert route
// believes it. From a trusted proxy with forwarded_client_cert, the binding is now checked against
// that field's certificate; from any other peer the field is believed no more than before, and a
// forward-auth check's own connection (the proxy's) never counts.
import { createHash, X509Certificate } from 'node:crypto'
import { readFileSync } from 'node:fs'
import { request } from 'undici'
import { afterAll, beforeAll, expect, it } from 'vitest'
import { createPki, type Issued, type TestPki } from '../helpers/certs.ts'
import { allowAnyCaller, startTestGateway, type TestGateway } from '../helpers/gateway.ts'
import { AUDIENCE, startIdentityProvider, type TestIdentityProvider } from '../helpers/identity-provider.ts'
import { startUpstream, type TestUpstream } from '../helpers/upstream.ts'
import { waitFor } from '../helpers/wait.ts'

const MCP = 'http://127.0.0.1/mcp'
let pki: TestPki
let idp: TestIdentityProvider
let upstream: TestUpstream
let behindProxy: TestGateway
let untrusted: TestGateway
let mine: Issued
let other: Issued

function config(server: Record<string, unknown>): Record<string, unknown> {
  return {
    server: { forwarded_client_cert: {}, forward_auth_peers: ['127.0.0.1/32'], ...server },
    // forwarded_client_cert needs one; the token's binding does not go by it.
    issuers: [{ name: 'corp', issuer: idp.issuer, audiences: [AUDIENCE, MCP] }, { name: 'mesh', type: 'x509', ca: pki.ca.cert }],
    ...allowAnyCaller(['corp']),
    upstreams: [{ name: 'api', url: upstream.url }],
    routes: [{ id: 'api', path: '/*', upstream: 'api' }],
    mcp: { path: '/mcp', resource: MCP, tools: [] },
  }
}

beforeAll(async () => {
  pki = createPki()
  mine = pki.ca.issue('agent', { usage: 'client' })
  other = pki.ca.issue('someone-else', { usage: 'client' })
  idp = await startIdentityProvider()
  upstream = await startUpstream()
  behindProxy = await startTestGateway(config({ trusted_proxies: ['127.0.0.1/32'] }))
  untrusted = await startTestGateway(config({ trusted_proxies: ['10.0.0.10/32'] }))
  await waitFor(() => [behindProxy, untrusted].every((gw) => gw.state.runtime.issuerKeys.get('corp')?.state === 'ready'), 'the issuer keys')
}, 60_000)

afterAll(async () => {
  await behindProxy?.close()
  await untrusted?.close()
  await upstream?.close()
  await idp?.stop()
  pki?.close()
})

function der(cert: Issued): Buffer {
  return new X509Certificate(readFileSync(cert.cert)).raw
}

function field(cert: Issued): string {
  return `:${der(cert).toString('base64')}:`
}

async function call(gateway: TestGateway, token: string, headers: Record<string, string> = {}, path = '/x'): Promise<{ status: number; code?: string }> {
  const res = await request(`${gateway.url}${path}`, { headers: { authorization: `Bearer ${token}`, ...headers } })
  const text = await res.body.text()
  return { status: res.statusCode, code: res.statusCode === 200 ? undefined : (JSON.parse(text) as { code?: string }).code }
}

it('a certificate-bound token counts with the certificate a trusted proxy forwards, and only with it', async () => {
  const bound = await idp.mint({ cnf: { 'x5t#S256': createHash('sha256').update(der(mine)).digest('base64url') } })
  expect(await call(behindProxy, bound, { 'client-cert': field(mine) })).toEqual({ status: 200 })
  expect(upstream.received.at(-1)?.headers['client-cert']).toBeUndefined()
  // The same token, verified and cached, with another certificate, none, or one that cannot be read.
  expect(await call(behindProxy, bound, { 'client-cert': field(other) })).toEqual({ status: 401, code: 'client_cert_required' })
  expect(await call(behindProxy, bound)).toEqual({ status: 401, code: 'client_cert_required' })
  expect(await call(behindProxy, bound, { 'client-cert': der(mine).toString('base64') })).toEqual({ status: 401, code: 'client_cert_required' })
  // A forward-auth check from the proxy, describing the request: the same rule.
  const described = { 'x-forwarded-method': 'GET', 'x-forwarded-uri': '/x' }
  expect(await call(behindProxy, bound, { ...described, 'client-cert': field(mine) }, '/.bouncer/auth')).toEqual({ status: 200 })
  expect(await call(behindProxy, bound, { ...described, 'client-cert': field(other) }, '/.bouncer/auth')).toEqual({ status: 401, code: 'client_cert_required' })
  // From a peer that is no trusted proxy, the field is anyone's copy of a public certificate.
  expect(await call(untrusted, bound, { 'client-cert': field(mine) })).toEqual({ status: 401, code: 'client_cert_required' })
  expect(await call(behindProxy, bound, { 'client-cert': field(mine) })).toEqual({ status: 200 })
})

it('so does the MCP endpoint, which verifies its callers\' tokens itself', async () => {
  const bound = await idp.mint({ aud: MCP, cnf: { 'x5t#S256': createHash('sha256').update(der(mine)).digest('base64url') } })
  const initialize = async (cert: Issued) => {
    const res = await request(`${behindProxy.url}/mcp`, {
      method: 'POST',
      headers: { authorization: `Bearer ${bound}`, 'client-cert': field(cert), 'content-type': 'application/json', accept: 'application/json, text/event-stream' },
      body: JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'initialize', params: { protocolVersion: '2025-06-18', capabilities: {}, clientInfo: { name: 'fx1', version: '1' } } }),
    })
    const text = await res.body.text()
    return { status: res.statusCode, text }
  }
  const refused = await initialize(other)
  expect(refused.status, refused.text).toBe(401)
  expect(refused.text).toContain('client_cert_required')
  const taken = await initialize(mine)
  expect(taken.status, taken.text).toBe(200)
})
